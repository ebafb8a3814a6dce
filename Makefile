# Hookstream: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml devtools/pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install run down test unit lint fmt bench bench-history chaos

$(STAMP): pyproject.toml devtools/pyproject.toml
	@command -v java >/dev/null && command -v mvn >/dev/null && command -v npm >/dev/null || { \
	  echo "==> installing Java 17, Maven and Node.js with apt-get"; \
	  apt-get update -q && apt-get install -y -q openjdk-17-jre-headless maven nodejs npm; }
	@echo "==> installing Python packages into $(VENV): hookstream, and hookstream-dev (devtools/) with the dev extra"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv
	@$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  echo "==> installing Prometheus and promtool (deploy/prometheus tests) with apt-get"; \
	  apt-get update -q && apt-get install -y -q prometheus; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "==> installing Debian's PostgreSQL server (the TLS tests: the embedded one has no OpenSSL) with apt-get"; \
	  apt-get update -q && apt-get install -y -q postgresql; }
	@command -v chromium >/dev/null || { \
	  echo "==> installing Chromium (the console's browser tests) with apt-get"; \
	  apt-get update -q && apt-get install -y -q chromium; }

## make run: Kafka, Postgres, the four services and a demo HTTPS receiver on this machine.
run: install
	@$(BIN)/python -m hookstream_dev.stack up

## make down: stop everything `make run` started.
down:
	@$(BIN)/python -m hookstream_dev.stack down

## make test: lint, then the whole suite against real Kafka, Postgres and HTTPS receivers.
test: install lint
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
