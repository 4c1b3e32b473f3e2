"""`streamrec backtest --retrain-every` on the drift stream: rounds inside the replay,
promoted versions served, and a degraded candidate refused by the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamrec.infra.cli import main

pytestmark = pytest.mark.e2e

# The drift stream's first events: warm-up 80%, scored 20% (1200 events: rounds after 300,
# 600 and 900; none after the last event, which would score nothing).
EVENTS, EVERY, DEGRADED_ROUND = 6000, 300, 2
# The first model is trained part of the way on purpose: it must have learned enough for
# the gate to tell a degraded candidate from it (a 3-epoch model is no better than a
# shuffled one), and leave rounds something to learn from 300 new events (a converged
# one often is not improved by them, and rightly keeps serving).
TRAIN_EPOCHS = 10
# Budgets measured on the shared 2-core machine, with headroom: stack start-up and warm-up
# per run, training the first model, one round (warm start, gate, catch-up, save) and its reload.
RUN_S, TRAIN_S, ROUND_S = 120.0, 300.0, 180.0
BUDGET_S = 2 * RUN_S + TRAIN_S + 3 * ROUND_S


@pytest.mark.timeout(BUDGET_S)
def test_rounds_promote_versions_and_refuse_a_degraded_candidate(tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["--dataset", "synthetic-drift", "--limit", str(EVENTS), "--recommenders", "transformer"]
    args += ["--retrain-every", str(EVERY), "--degrade-round", str(DEGRADED_ROUND)]
    args += ["--train-epochs", str(TRAIN_EPOCHS), "--out", str(out)]
    result = CliRunner().invoke(main, ["backtest", *args], env={"STREAMREC_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["recommenders"]) == {"transformer", "transformer+retrain"}
    rounds = report["retraining"]
    assert [r["at_event"] for r in rounds] == [EVERY, 2 * EVERY, 3 * EVERY]
    degraded = rounds[DEGRADED_ROUND - 1]
    assert not degraded["promoted"] and degraded["version"] is None, degraded
    promoted = [r for r in rounds if r["promoted"]]
    assert promoted and all(r["version"] for r in promoted), rounds
    assert "Retraining" in (out / "report.html").read_text()
