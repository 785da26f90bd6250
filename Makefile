# Everything a user needs: `make bench` and `make test` set themselves up (idempotent, cached).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKLOAD ?= workloads/fraud-default.yaml
ENGINES ?=
BACKEND ?= auto
STAMP := $(VENV)/.installed
# docker-compose v1 (Debian bookworm), else the v2 plugin.
COMPOSE ?= $(shell command -v docker-compose || echo docker compose)
COMPOSE_ENV := .cache/compose/compose.env
# `make bench-all`: every scenario file (smoke.yaml is the tests' own).
SCENARIOS := $(filter-out workloads/smoke.yaml,$(sort $(wildcard workloads/*.yaml)))

.PHONY: setup bench bench-all sweep test unit integration selfbench driver-bench compose-up compose-down clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test]'
	@touch $@

setup: $(STAMP)
	$(BIN)/showdown setup -w $(WORKLOAD) --backend $(BACKEND)

bench: setup
	$(BIN)/showdown run -w $(WORKLOAD) --backend $(BACKEND) $(if $(ENGINES),--engines $(ENGINES))

# Each scenario in turn, every engine of its file; a failed scenario does not stop the others.
bench-all: setup
	@status=0; for w in $(SCENARIOS); do \
		$(BIN)/showdown run -w $$w --backend $(BACKEND) $(if $(ENGINES),--engines $(ENGINES)) || status=1; \
	done; exit $$status

sweep: setup
	$(BIN)/showdown sweep -w $(WORKLOAD) --backend $(BACKEND) $(if $(ENGINES),--engines $(ENGINES))

test: setup unit integration

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/bench --benchmark-disable --durations=10

integration: setup
	$(BIN)/pytest tests/integration -m integration --timeout=1200 --durations=15

selfbench: $(STAMP)
	$(BIN)/pytest tests/bench --benchmark-only --benchmark-columns=min,median,max,ops

driver-bench: setup
	$(BIN)/showdown driver-bench

compose-up: setup
	$(BIN)/showdown compose
	$(COMPOSE) --env-file $(COMPOSE_ENV) up -d

compose-down:
	$(COMPOSE) --env-file $(COMPOSE_ENV) down

clean:
	rm -rf $(VENV) .cache
