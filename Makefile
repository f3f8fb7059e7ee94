# The two commands: `make dev` runs the local stack, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast bench deploy-dry-run clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

dev: $(STAMP)
	$(PY) tools/dev.py

test: $(STAMP)
	$(PY) -m pytest

# Everything but the browser suite, for a quick loop.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not browser"

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script $(BENCH_ARGS) || exit 1; done

deploy-dry-run:
	./deploy.sh --dry-run

clean:
	rm -rf $(VENV) build .deploy-staging .pytest_cache
