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

.PHONY: setup demo up test test-unit test-integration test-e2e lint bench evaluate backtest clean

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

# Everything CI runs: lint, then every test (unit, integration, e2e).
test: lint
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status

# Unit tests, the package's doctests included (tests/unit/test_doctests.py).
test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest -m integration

test-e2e: setup
	$(PY) -m pytest -m e2e

# Files held to ruff (lint + format) and mypy so far. The rest of the tree is brought in
# after the parallel restructuring merges; then LINTED becomes every source folder.
LINTED ?= infra/backtest.py infra/backtest_report.py infra/gating.py infra/report.py infra/charts.py \
	infra/demo.py infra/broker.py infra/commands/backtest.py infra/commands/pipeline.py \
	infra/commands/topics.py infra/commands/options.py \
	streams/sources.py streams/replay.py streams/freshness.py streams/lists.py \
	bench/bench_pipeline.py tests/conftest.py tests/topics.py tests/modules.py tests/backtest_reports.py \
	tests/unit/test_report.py tests/unit/test_sources.py tests/unit/test_config.py tests/unit/test_deployment.py \
	tests/unit/test_packaging.py tests/integration/test_backtest.py \
	tests/e2e/test_models_cli.py tests/e2e/test_report_browser.py \
	streams/metrics.py serving/dashboard.py tests/traffic.py tests/browser.py tests/e2e/test_dashboard_browser.py \
	tests/integration/test_metrics_scrape.py tests/unit/test_observability.py \
	models/__init__.py models/artifact.py models/base.py models/checks.py models/content.py \
	models/cooccurrence.py models/evaluation.py models/holdout.py models/metrics.py models/popularity.py \
	models/prequential.py models/registry.py models/rerank.py models/retrieval.py models/sequence.py \
	models/text_encoder.py models/training.py models/transformer.py models/trending.py models/versions.py \
	models/fusion/explanations.py models/fusion/weights.py serving/semantic.py serving/errors.py \
	infra/commands/models.py infra/commands/trainer.py streams/drift.py streams/model_host.py \
	tests/unit/test_fusion.py tests/unit/test_recommenders.py tests/unit/test_sequence_model.py \
	tests/unit/test_transformer_recommender.py tests/unit/test_retrieval.py tests/unit/test_prequential.py \
	tests/unit/test_evaluation_protocol.py tests/unit/test_train_cli.py tests/unit/test_conformance.py \
	tests/unit/test_doctests.py tests/unit/test_layers.py tests/integration/test_model_reload.py \
	tests/e2e/test_fusion_offline.py tests/published.py \
	infra/stack.py infra/cli.py streamrec/settings.py bench/cli_startup.py tests/unit/test_cli_errors.py \
	tests/unit/test_cli_help.py tests/integration/test_lifecycle.py tests/integration/test_foreign_client.py \
	tests/e2e/test_quick_start.py tests/unit/test_charts.py
# mypy does not know setuptools' package-dir mapping: it checks the folders through a tree
# of links laid out as installed (streamrec/{models,streams,serving,infra}).
MYPY_ROOT := .cache/mypy-root
INSTALLED_AS = $(patsubst models/%,$(MYPY_ROOT)/streamrec/models/%,$(patsubst streams/%,$(MYPY_ROOT)/streamrec/streams/%,\
	$(patsubst serving/%,$(MYPY_ROOT)/streamrec/serving/%,$(patsubst infra/%,$(MYPY_ROOT)/streamrec/infra/%,\
	$(patsubst streamrec/%,$(MYPY_ROOT)/streamrec/%,$(1))))))

lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	rm -rf $(MYPY_ROOT) && mkdir -p $(MYPY_ROOT)/streamrec
	for f in streamrec/*.py; do ln -s $(CURDIR)/$$f $(MYPY_ROOT)/$$f; done
	for d in models streams serving infra; do ln -s $(CURDIR)/$$d $(MYPY_ROOT)/streamrec/$$d; done
	$(VENV)/bin/mypy $(call INSTALLED_AS,$(LINTED))

bench: setup
	$(PY) bench/bench_pipeline.py

evaluate: setup
	$(VENV)/bin/streamrec evaluate --dataset ml-100k

backtest: setup
	$(VENV)/bin/streamrec backtest --dataset ml-100k --out reports/ml-100k

clean:
	rm -rf .streamrec reports .pytest_cache .cache .mypy_cache .ruff_cache
