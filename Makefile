# Hookstream: the two commands a newcomer needs are `make run` and `make test`.
# apt-get steps need root (Debian 12 or 13, Ubuntu 24.04); Python packages come from uv.lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
SMOKESCREEN_VERSION := v0.1.0
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml devtools/pyproject.toml uv.lock | sha1sum | cut -c1-12)

.PHONY: install test-tools jaeger tracing-test run down test unit lint fmt bench bench-history chaos deploy-test fresh-machine-test

# What running needs: Java and Maven (the local Kafka), Python's venv module, and every Python
# package exactly as uv.lock pins it (hookstream editable with the dev extra, and hookstream-dev
# from devtools/). `uv sync --locked` stops when pyproject.toml changed without `uv lock`;
# --system-certs trusts the system's CAs (a company proxy's included), as apt and pip do.
$(STAMP): pyproject.toml devtools/pyproject.toml uv.lock
	@command -v java >/dev/null && command -v mvn >/dev/null && $(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "==> installing Java (17 or 21, the distribution's default), Maven and python3-venv with apt-get"; \
	  apt-get update -q && apt-get install -y -q default-jre-headless maven python3-venv; }
	@echo "==> installing Python packages from uv.lock into $(VENV): hookstream, and hookstream-dev (devtools/) with the dev extra"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv==$(UV_VERSION)
	@$(BIN)/uv sync -q --locked --extra dev --system-certs
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# What only the tests use: Node.js (the Qlik client compatibility test), Prometheus and promtool
# (deploy/prometheus), Chromium (the console's browser tests), Smokescreen (the egress proxy
# tests; built with Go 1.21 or later, which fetches the toolchain Smokescreen asks for).
test-tools:
	@command -v npm >/dev/null || { \
	  echo "==> installing Node.js (the Qlik client compatibility test) with apt-get"; \
	  apt-get update -q && apt-get install -y -q nodejs npm; }
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  echo "==> installing Prometheus and promtool (deploy/prometheus tests) with apt-get"; \
	  apt-get update -q && apt-get install -y -q prometheus; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "==> installing Debian's PostgreSQL server (the TLS tests: the embedded one has no OpenSSL) with apt-get"; \
	  apt-get update -q && apt-get install -y -q postgresql; }
	@command -v chromium >/dev/null || { \
	  echo "==> installing Chromium (the console's browser tests) with apt-get"; \
	  apt-get update -q && apt-get install -y -q chromium; }
	@test -x .hookstream/go/bin/smokescreen || { \
	  command -v go >/dev/null || { \
	    echo "==> installing Go with apt-get"; apt-get update -q && apt-get install -y -q golang-go; }; \
	  echo "==> installing Smokescreen $(SMOKESCREEN_VERSION) (the egress proxy tests) into .hookstream/go/bin"; \
	  GOBIN="$(CURDIR)/.hookstream/go/bin" go install github.com/stripe/smokescreen@$(SMOKESCREEN_VERSION); }

# Jaeger, the tracing test's collector, built with Go once per machine into ~/.cache/hookstream
# (its module's `replace` directives make `go install` refuse it, so the downloaded module is
# built in place). It takes long (tens of minutes on 2 busy cores), so `make test` runs the
# tracing test only where it is built; `make tracing-test` builds it and runs that test.
JAEGER_VERSION := v1.75.0
GO_TOOLS := $(HOME)/.cache/hookstream/go
GO_ENV := GOPATH=$(GO_TOOLS) GOCACHE=$(GO_TOOLS)/cache GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=auto
jaeger:
	@test -x $(GO_TOOLS)/bin/jaeger || { \
	  command -v go >/dev/null || { echo "==> installing Go with apt-get"; \
	    apt-get update -q && apt-get install -y -q golang-go; }; \
	  echo "==> building Jaeger $(JAEGER_VERSION) (the tracing test's collector) into $(GO_TOOLS)/bin; this takes a while"; \
	  dir=$$($(GO_ENV) go mod download -json github.com/jaegertracing/jaeger@$(JAEGER_VERSION) \
	    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p') && \
	  cd "$$dir" && $(GO_ENV) go build -o $(GO_TOOLS)/bin/jaeger ./cmd/jaeger; }

## make tracing-test: build Jaeger (once) and run the end-to-end tracing test against it.
tracing-test: install jaeger
	@HOOKSTREAM_JAEGER=$(GO_TOOLS)/bin/jaeger $(BIN)/pytest -ra tests/e2e/test_tracing_jaeger.py

## make run: Kafka, Postgres, the four services and a demo HTTPS receiver on this machine.
run: install
	@$(BIN)/python -m hookstream_dev.stack up

## make down: stop everything `make run` started.
down:
	@$(BIN)/python -m hookstream_dev.stack down

## make test: lint, then the whole suite against real Kafka, Postgres and HTTPS receivers.
test: install test-tools lint
	@$(BIN)/pytest -ra

## make chaos: the full fault suite (kills, broker and Postgres outages under load); writes docs/reliability.md.
chaos: install
	@HOOKSTREAM_CHAOS=full $(BIN)/pytest -ra -m faults tests/faults

## make bench: every scenario (a-h) on real Kafka and Postgres, each beside a bare client's ceiling;
## writes docs/benchmarks.md. A smoke run: $(BIN)/python -m hookstream_dev.bench --quick
bench: install
	@$(BIN)/python -m hookstream_dev.bench

## make bench-history: seven days, a million deliveries: pruning and paging at volume.
bench-history: install
	@$(BIN)/python -m hookstream_dev.bench_history

unit: install
	@$(BIN)/pytest -ra tests/unit

lint: install
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

fmt: install
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

## make deploy-test: build the image and stand-ins with podman, run docker-compose.yml end to end
## and the Kubernetes dev overlay with `podman kube play` (needs root: apt-get, podman). Slow
## (minutes), so not part of `make test`; docs/operations.md records its runs.
deploy-test: install
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null || { \
	  echo "==> installing podman, runc and debootstrap with apt-get"; \
	  apt-get update -q && apt-get install -y -q podman runc debootstrap; }
	@HOOKSTREAM_DEPLOY_TEST=1 $(BIN)/pytest -ra -p no:cacheprovider tests/deploy/test_containers.py

## make fresh-machine-test: the README's `make run` and three-step example in a podman container
## made from a bare Debian 13 (debootstrap trixie: Python 3.13, OpenJDK 21); root, about ten
## minutes of downloads. docs/operations.md records its runs.
fresh-machine-test: install
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null || { \
	  echo "==> installing podman, runc and debootstrap with apt-get"; \
	  apt-get update -q && apt-get install -y -q podman runc debootstrap; }
	@HOOKSTREAM_FRESH_MACHINE_TEST=1 $(BIN)/pytest -ra -s -p no:cacheprovider tests/deploy/test_fresh_machine.py
