# syntax=docker/dockerfile:1
# One image for every Hookstream service; the command picks it:
#   hookstream-api | hookstream-matcher | hookstream-dispatcher | hookstream-janitor [--once]
#   hookstream migrate   (schema migrations; run it before the services of a new version)
# `--target demo-receiver` builds the HTTPS receiver of the compose demo profile.

FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/hookstream/bin:$PATH
RUN groupadd --system --gid 10001 hookstream \
 && useradd --system --uid 10001 --gid hookstream --home-dir /app --shell /usr/sbin/nologin hookstream
WORKDIR /app

# Every dependency ships manylinux wheels for CPython 3.11, so no compiler is needed anywhere;
# the build stage only holds pip's caches and the sources, which never reach the final image.
FROM base AS build
WORKDIR /src
COPY . .
RUN python -m venv --without-pip /opt/hookstream \
 && pip install --no-cache-dir --disable-pip-version-check --python /opt/hookstream/bin/python . \
 && pip install --no-cache-dir --disable-pip-version-check --no-deps --target /opt/demo ./devtools trustme==1.2.1

FROM base AS demo-receiver
COPY --from=build /opt/hookstream /opt/hookstream
COPY --from=build /opt/demo /opt/demo
ENV PYTHONPATH=/opt/demo
USER 10001:10001
EXPOSE 8443
ENTRYPOINT ["python", "-m", "hookstream_dev.receiver", "--host", "0.0.0.0", "--tls-dir", "/tls"]

FROM base AS runtime
COPY --from=build /opt/hookstream /opt/hookstream
# Listen on every interface inside the container; the ports are the services' defaults.
ENV HOOKSTREAM_HOST=0.0.0.0 \
    HOOKSTREAM_MATCHER_HOST=0.0.0.0 \
    HOOKSTREAM_DISPATCHER_HOST=0.0.0.0 \
    HOOKSTREAM_JANITOR_HOST=0.0.0.0 \
    HOOKSTREAM_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000 8001 8002 8003
CMD ["hookstream-api"]
