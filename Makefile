# arko: every target builds its own virtualenv, so a fresh clone needs only
# Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_DIRS := $(wildcard arko tests bench scripts dogfood examples setup.py)
# pytest-xdist workers per test pass; 1 runs the tests one by one in pytest's own process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest $(if $(filter 1,$(TEST_WORKERS)),-n 0,-n $(TEST_WORKERS) --dist loadgroup)
# podman's settings for the container steps' tests, images and benchmark: runc
# and ulimits no higher than the host's (why: containers/containers.conf). A
# host that needs others sets its own CONTAINERS_CONF.
export CONTAINERS_CONF ?= $(CURDIR)/containers/containers.conf
# The image container steps are tested on; make image-base builds it.
BASE_IMAGE := localhost/arko-base:latest
# What the test passes need for the container tests, unless
# ARKO_TEST_CONTAINERS=off says the machine has no container engine.
CONTAINER_NEEDS := $(if $(filter off,$(ARKO_TEST_CONTAINERS)),,containers image-base)

.DEFAULT_GOAL := help
.PHONY: help venv proto fmt lint test test-unit test-sqlite test-postgres demo demo-tls bench bench-capacity bench-children bench-containers bench-hooks clean dogfood ui ui-test chromium containers image-base screenshots docs docs-check

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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

# The two passes run at the same time, each on TEST_WORKERS workers; each
# pass's output is printed whole when it ends (--output-sync).
test: $(STAMP) lint docs-check ui-test chromium $(CONTAINER_NEEDS) ## Lint, check the manual, the UI's tests, then test-sqlite and test-postgres at once.
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

test-unit: $(STAMP) ## The unit tests only (tests/unit, no daemons): well under a minute.
	$(PYTEST) tests/unit

test-sqlite: $(STAMP) ui chromium $(CONTAINER_NEEDS) ## The whole test suite, masters on SQLite, on TEST_WORKERS workers (2).
	ARKO_TEST_MASTER_DB=sqlite $(PYTEST) --durations=20

# Never skipped quietly: with no PostgreSQL the run stops, saying so, unless
# ARKO_TEST_POSTGRES=off says the machine has none.
test-postgres: $(STAMP) ui chromium $(CONTAINER_NEEDS) ## The integration suite again, masters on PostgreSQL (ARKO_TEST_POSTGRES), on TEST_WORKERS workers.
	@if [ "$$ARKO_TEST_POSTGRES" = off ]; then \
		echo "test-postgres: SKIPPED on purpose (ARKO_TEST_POSTGRES=off)"; \
	else \
		echo "ARKO_TEST_MASTER_DB=postgresql $(PYTEST) --durations=20 tests/integration"; \
		ARKO_TEST_MASTER_DB=postgresql $(PYTEST) --durations=20 tests/integration; \
	fi

demo: $(STAMP) ## Start a master and a slave, run the grpcurl and webhook calls, print the web UI URL.
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory ui; else echo "$(NO_NODE)"; fi
	$(PY) scripts/demo.py

demo-tls: $(STAMP) ## The same call with mutual TLS on every link (throw-away CA).
	$(PY) scripts/demo_tls.py

dogfood: $(STAMP) containers image-base ## arko lints, tests, packages, builds its images and deploys this checkout through arko.
	$(PY) -m scripts.dogfood

bench: $(STAMP) ## Run the benchmarks (not part of make test); BENCH_ARGS=--quick for a short run.
	bash bench/setup.sh $(VENV)
	$(PY) -m bench $(BENCH_ARGS)

# The web UI (ui/): Node.js 20+ and npm build it; the master serves ui/dist (a
# wheel or sdist carries its own copy: setup.py builds ui/dist when missing).
NO_NODE := The web UI is not built: it needs Node.js 20.19+ with npm (https://nodejs.org/en/download, or your distribution's nodejs and npm if 20.19+), then run make ui
UI_STAMP := ui/node_modules/.installed

$(UI_STAMP): ui/package.json ui/package-lock.json
	@command -v npm >/dev/null || { echo "$(NO_NODE)"; exit 1; }
	cd ui && npm ci
	touch $(UI_STAMP)

ui: $(UI_STAMP) ## Type-check and build the web UI into ui/dist.
	cd ui && npm run build

ui-test: ui ## The web UI's unit tests (Vitest).
	cd ui && npm test

chromium: ## Install Debian's chromium for the browser tests when it is missing.
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

# Container steps (--engine podman): Debian's podman with runc (crun fails on
# hosts like these), catatonit for --init, debootstrap and uidmap for the base
# image. The container tests fail, never skip, when podman does not answer,
# unless ARKO_TEST_CONTAINERS=off says the machine has none.
containers: ## Install Debian's podman, runc, catatonit, debootstrap and uidmap when missing.
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null \
		&& command -v newuidmap >/dev/null && test -x /usr/libexec/podman/catatonit \
		|| { apt-get update && apt-get install -y podman runc catatonit debootstrap uidmap; }

image-base: containers ## Build localhost/arko-base (debootstrap + podman import) unless it exists.
	@podman image exists $(BASE_IMAGE) || bash containers/base.sh

screenshots: $(STAMP) ui chromium ## Retake the web UI screenshots of the manual (docs/ui-*.png).
	ARKO_SCREENSHOTS=docs $(PY) -m pytest -q tests/integration/test_web_ui.py

# The manual (docs/, mkdocs.yml): strict, so a broken link or anchor fails.
docs: $(STAMP) ## Build the manual (docs/) into site/.
	$(VENV)/bin/mkdocs build --strict --site-dir site

# Not --quiet: it hides the warnings that --strict counts, and the build passes.
docs-check: $(STAMP) ## Build the manual into a scratch folder: fails on a broken link or anchor.
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && $(VENV)/bin/mkdocs build --strict --site-dir "$$out"

bench-children: $(STAMP) ## A child job's dispatch and a fan-out of 100 against top-level jobs; BENCH_ARGS=--quick.
	$(PY) -m bench.children $(BENCH_ARGS)

bench-capacity: $(STAMP) ## Capacity tracking's cost vs main, and the queue's hand-off time.
	$(PY) -m bench.capacity $(BENCH_ARGS)

bench-containers: $(STAMP) containers image-base ## A step in a container against the same step on the host, and 20 at once.
	$(PY) -m bench.containers $(BENCH_ARGS)

bench-hooks: $(STAMP) ## A webhook's latency to job STARTED against POST /api/v1/run, same run.
	$(PY) -m bench.hooks $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info ui/node_modules ui/dist
