# streamrec — `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Only this torch exists here as a CPU build; anything unpinned pulls gigabytes of CUDA.
TORCH  := torch==2.13.0
PIP    := $(PY) -m pip --quiet --disable-pip-version-check
# Extra pytest arguments for `make test`, e.g. PYTEST_ARGS="-k backtest".
PYTEST_ARGS ?=

.PHONY: setup tools demo up test test-unit test-integration test-e2e lint bench evaluate backtest clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -c constraints.txt -e ".[dev]"
	# MovieLens-100K ships inside recbole; its other dependencies are not needed.
	$(PIP) install --no-deps recbole==1.2.1
	touch $(STAMP)

# Chromium and kafka-console for the browser and foreign-client tests (best effort here;
# `.ci/run` requires them).
tools:
	infra/test-tools.sh

demo: setup
	$(VENV)/bin/streamrec demo

up: setup
	$(VENV)/bin/streamrec up

# Everything CI runs: lint, then every test (unit, integration, e2e).
test: tools lint
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status

# Unit tests, the package's doctests included (tests/unit/test_doctests.py).
test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest -m integration

test-e2e: setup
	$(PY) -m pytest -m e2e

# ruff (lint + format) over every Python file; mypy over the installed packages. mypy does
# not know setuptools' package-dir mapping, so it reads the folders through a tree of links
# laid out as installed (streamrec/{models,streams,serving,infra}).
MYPY_ROOT := .cache/mypy-root

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	rm -rf $(MYPY_ROOT) && mkdir -p $(MYPY_ROOT)/streamrec
	for f in streamrec/*.py; do ln -s $(CURDIR)/$$f $(MYPY_ROOT)/$$f; done
	for d in models streams serving infra; do ln -s $(CURDIR)/$$d $(MYPY_ROOT)/streamrec/$$d; done
	$(VENV)/bin/mypy $(MYPY_ROOT)/streamrec

bench: setup
	$(PY) bench/bench_pipeline.py

evaluate: setup
	$(VENV)/bin/streamrec evaluate --dataset ml-100k

backtest: setup
	$(VENV)/bin/streamrec backtest --dataset ml-100k --out reports/ml-100k

clean:
	rm -rf .streamrec reports .pytest_cache .cache .mypy_cache .ruff_cache
