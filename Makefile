# The two commands: `make dev` runs the local stack, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint smoke bench bench-smoke fuzz openapi deploy-dry-run clean browser-deps node-deps

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# `make dev AUTH=emulator` adds the Firebase Auth emulator (firebase-tools from
# package-lock.json, so Node is needed then and only then).
AUTH ?= off
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is missing: install Node.js 20+ (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

node-deps: $(NODE_STAMP)

dev: $(STAMP) $(if $(filter emulator,$(AUTH)),$(NODE_STAMP))
	$(PY) tools/dev.py --auth $(AUTH)

# Benchmarks run small in every `make test` (figures printed, never asserted as timings);
# then the whole pytest suite, whose summary is the last thing printed.
test: $(STAMP) lint browser-deps bench-smoke
	$(PY) -m pytest

# Everything but the browser suite, for a quick loop.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not browser"

# The browser suite drives Debian's Chromium (Playwright's own download needs internet).
CHROMIUM ?= /usr/bin/chromium
browser-deps: $(NODE_STAMP)
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "warning: $(CHROMIUM) is missing, so the browser tests will fail." >&2; \
		echo "  Install it as root: sudo apt-get update && sudo apt-get install -y chromium" >&2; \
		echo "  (or run 'make test-fast' to skip the browser suite)" >&2; \
	fi

bench-smoke: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script --smoke"; $(PY) $$script --smoke || exit 1; done

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script $(BENCH_ARGS) || exit 1; done

# actionlint on the GitHub Actions workflows (a pinned dev dependency; make test runs it first).
lint: $(STAMP)
	$(VENV)/bin/actionlint -no-color -shellcheck=$(VENV)/bin/shellcheck -pyflakes=$(VENV)/bin/pyflakes .github/workflows/*.yml
	$(VENV)/bin/pyflakes shared functions tests bench tools

# Smoke check of a running site: `make smoke` checks `make dev`'s stack; after a deploy,
# `make smoke SMOKE_URL=https://<project>.web.app EXPECT_VERSION=<git short sha>` with
# SMOKE_ID_TOKEN in the environment.
SMOKE_URL ?= http://127.0.0.1:5000
smoke:
	scripts/smoke "$(SMOKE_URL)" $(if $(EXPECT_VERSION),--expect-version "$(EXPECT_VERSION)" --expect-sign-in)

# A long schemathesis run over every operation (make test runs a bounded one).
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} $(PY) -m pytest tests/e2e/test_fuzz.py -s -p no:cacheprovider

# Regenerate public/api/openapi.json from the routes' pydantic models (a test fails when it drifts).
openapi: $(STAMP)
	$(PY) tools/openapi.py

deploy-dry-run:
	./deploy.sh --dry-run

clean:
	rm -rf $(VENV) build .deploy-staging .pytest_cache node_modules
