# streamrec — `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Only this torch exists here as a CPU build; anything unpinned pulls gigabytes of CUDA.
TORCH  := torch==2.13.0
PIP    := $(PY) -m pip --quiet --disable-pip-version-check

.PHONY: setup demo up test test-unit test-integration test-e2e bench evaluate backtest clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -c constraints.txt -e ".[dev]"
	# MovieLens-100K ships inside recbole; its other dependencies are not needed.
	$(PIP) install --no-deps recbole==1.2.1
	touch $(STAMP)

demo: setup
	$(VENV)/bin/streamrec demo

up: setup
	$(VENV)/bin/streamrec up

test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest -m integration

test-e2e: setup
	$(PY) -m pytest -m e2e

bench: setup
	$(PY) bench/bench_pipeline.py

evaluate: setup
	$(VENV)/bin/streamrec evaluate --dataset ml-100k

backtest: setup
	$(VENV)/bin/streamrec backtest --dataset ml-100k --out reports/ml-100k

clean:
	rm -rf .streamrec reports .pytest_cache
