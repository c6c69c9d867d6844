# arko: every target builds its own virtualenv, so a fresh clone needs only
# Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_DIRS := $(wildcard arko tests bench scripts)

.DEFAULT_GOAL := help
.PHONY: help venv proto fmt lint test demo demo-tls bench bench-capacity clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install arko with its dev tools.

proto: $(STAMP) ## Regenerate arko/gen from protos/.
	$(PY) scripts/genproto.py arko/gen

fmt: $(STAMP) ## Format the code.
	$(VENV)/bin/ruff format $(LINT_DIRS)
	$(VENV)/bin/ruff check --fix $(LINT_DIRS)

lint: $(STAMP) ## ruff and mypy.
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy

test: $(STAMP) lint ## Install, lint, run the whole test suite.
	$(PY) -m pytest

demo: $(STAMP) ## Start a master and a slave, run the README's grpcurl call, stop both.
	$(PY) scripts/demo.py

demo-tls: $(STAMP) ## The same call with mutual TLS on every link (throw-away CA).
	$(PY) scripts/demo_tls.py

bench: $(STAMP) ## Run the benchmarks (not part of make test); BENCH_ARGS=--quick for a short run.
	bash bench/setup.sh $(VENV)
	$(PY) -m bench $(BENCH_ARGS)

bench-capacity: $(STAMP) ## Capacity tracking's cost vs main, and the queue's hand-off time.
	$(PY) -m bench.capacity $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
