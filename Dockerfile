# syntax=docker/dockerfile:1
# One image for every Hookstream service; the command picks it:
#   hookstream-api | hookstream-matcher | hookstream-dispatcher | hookstream-janitor [--once]
#   hookstream migrate   (schema migrations; run it before the services of a new version)
# `--target demo-receiver` builds the HTTPS receiver of the compose demo profile.
#
# Dependencies come from uv.lock, exactly. Behind a TLS-intercepting proxy, give its CA bundle
# as a build secret; it is mounted for the steps that download and never stored in a layer:
#   docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt -t hookstream .

FROM python:3.11.14-slim-bookworm AS base
ARG VERSION=0.1.0
ARG REVISION=unknown
# Set at build time: --build-arg VERSION=... REVISION=$(git rev-parse HEAD) SOURCE=<repo URL>
ARG SOURCE=
LABEL org.opencontainers.image.title="Hookstream" \
      org.opencontainers.image.description="Self-hosted webhooks on Kafka and Postgres, compatible with the Qlik Cloud webhooks API" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/hookstream/bin:$PATH
RUN groupadd --system --gid 10001 hookstream \
 && useradd --system --uid 10001 --gid hookstream --home-dir /app --shell /usr/sbin/nologin hookstream \
 && mkdir -p /tls \
 && chown hookstream:hookstream /tls
WORKDIR /app

# Every dependency ships manylinux wheels for CPython 3.11, so no compiler is needed; the build
# stage holds uv and the sources, which never reach the final image. The dependencies are
# installed before the sources are copied, so a source change reuses that layer.
FROM base AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV UV_PROJECT_ENVIRONMENT=/opt/hookstream \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
RUN --mount=type=secret,id=ca-bundle \
    if [ -f /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python -m pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
COPY pyproject.toml uv.lock ./
COPY devtools/pyproject.toml devtools/
RUN --mount=type=secret,id=ca-bundle \
    if [ -f /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi \
 && uv sync --frozen --no-install-project --no-editable
COPY libs libs
COPY services services
COPY clients clients
RUN --mount=type=secret,id=ca-bundle \
    if [ -f /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi \
 && uv sync --frozen --no-editable
# The demo receiver: the devtools package beside the product's environment, trustme as locked.
COPY devtools devtools
RUN --mount=type=secret,id=ca-bundle \
    if [ -f /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi \
 && uv pip install --python /opt/hookstream/bin/python --no-deps --target /opt/demo ./devtools \
      "$(uv export --frozen --extra dev --no-hashes --no-emit-project | grep '^trustme==')"

FROM base AS demo-receiver
COPY --from=build /opt/hookstream /opt/hookstream
COPY --from=build /opt/demo /opt/demo
ENV PYTHONPATH=/opt/demo
USER 10001:10001
EXPOSE 8443
ENTRYPOINT ["python", "-m", "hookstream_dev.receiver", "--host", "0.0.0.0", "--tls-dir", "/tls"]

FROM base AS runtime
COPY --from=build /opt/hookstream /opt/hookstream
# Listen on every interface inside the container; the ports are the services' defaults
# (8000 the API and console, 8004 the API's ops port, 8001-8003 the workers' ops ports).
ENV HOOKSTREAM_HOST=0.0.0.0 \
    HOOKSTREAM_OPS_HOST=0.0.0.0 \
    HOOKSTREAM_MATCHER_HOST=0.0.0.0 \
    HOOKSTREAM_DISPATCHER_HOST=0.0.0.0 \
    HOOKSTREAM_JANITOR_HOST=0.0.0.0 \
    HOOKSTREAM_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
CMD ["hookstream-api"]
