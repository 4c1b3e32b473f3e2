"""A replayed experiment in the backtest report, and the 95% intervals of every row and window."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamrec.infra import report
from streamrec.infra.backtest import arm_runs, experiment_summary
from streamrec.infra.cli import main
from streamrec.models.experiments import METRICS, arm_of, parse_experiment
from streamrec.models.prequential import Context
from tests.backtest_reports import ITEMS, built_report, synthetic_run

# The interval's ends are weighted sums, the row's figure a plain mean: equal up to rounding.
ULP = 1e-12
EXPERIMENT = parse_experiment("ab=control:popularity,treat:cooccurrence")


def _experiment_report() -> dict:
    together = synthetic_run("ab", 0)
    alone = synthetic_run("popularity", 0)
    context = Context([i.item_id for i in ITEMS], Counter({f"i{n}": 30 - n for n in range(20)}))
    built = built_report()
    built["experiments"] = {"ab": experiment_summary(together, EXPERIMENT, [alone], context, seed=1)}
    return built


def test_every_row_and_window_carries_its_interval() -> None:
    built = built_report()
    for name, row in built["recommenders"].items():
        for metric in METRICS:
            assert row[f"{metric}_low"] - ULP <= row[metric] <= row[f"{metric}_high"] + ULP, (name, metric)
        for window in built["over_time"][name]:
            assert window["ndcg@10_low"] - ULP <= window["ndcg@10"] <= window["ndcg@10_high"] + ULP
    page = report.render(built)
    assert 'class="ci"' in page and "95% low" in page


def test_the_experiment_is_reported_per_arm_with_differences_and_the_lone_run() -> None:
    built = _experiment_report()
    arms = built["experiments"]["ab"]["arms"]
    assert set(arms) == {"control", "treat"}
    for metric in METRICS:
        assert set(arms["treat"]["difference"][metric]) == {"estimate", "low", "high"}
    lone = arms["control"]["alone_same_users"]["mrr@10"]
    assert lone["estimate"] == pytest.approx(arms["control"]["mrr@10"]["estimate"])  # same lists, same users
    assert "alone_same_users" not in arms["treat"]  # cooccurrence was not replayed alone
    page = report.render(built)
    assert "treat − control (" in page and "popularity alone, same users" in page


def test_an_experiment_replay_splits_into_one_run_per_arm() -> None:
    together = synthetic_run("ab", 0)
    runs = arm_runs(together, EXPERIMENT)
    assert [r.recommender for r in runs] == ["ab/control", "ab/treat"]
    assert sum(len(r.outcomes) for r in runs) == len(together.outcomes)
    for run in runs:
        arm = run.recommender.split("/")[1]
        assert all(arm_of(EXPERIMENT, o.event.user_id) == arm for o in run.outcomes)


def test_the_cli_prints_a_replayed_experiment_from_report_json(tmp_path: Path) -> None:
    json_path, _ = report.write(_experiment_report(), tmp_path)
    printed = CliRunner().invoke(main, ["experiments", "--report", str(json_path)])
    assert printed.exit_code == 0, printed.output
    assert "treat − control" in printed.output and "popularity alone" in printed.output
