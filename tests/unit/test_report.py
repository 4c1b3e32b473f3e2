"""The backtest report: built from synthetic outcomes and rendered (the browser check is tests/e2e)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from streamrec.infra import report
from tests.backtest_reports import built_report


@pytest.fixture(scope="module")
def built() -> dict:
    return built_report()


def test_report_json_has_the_required_keys(built: dict, tmp_path: Path) -> None:
    json_path, _ = report.write(built, tmp_path)
    data = orjson.loads(json_path.read_bytes())
    required = [
        f"{m}@{k}"
        for k in (10, 20)
        for m in ("hr", "ndcg", "mrr", "coverage", "gini", "tail_share", "arp", "novelty", "ild")
    ]
    required += ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "events", "wall_s", "no_list", "throughput_eps"]
    for row in data["recommenders"].values():
        assert not [key for key in required if key not in row]
    # Shift 0: the event for list n is i(n+2) = rank 3 in the list published before it.
    assert data["recommenders"]["popularity"]["mrr@10"] == pytest.approx(1 / 3)
    assert data["recommenders"]["cooccurrence"]["mrr@10"] == pytest.approx(1 / 2)
    assert data["config"]["seed"] == 7 and "numpy" in data["versions"]


def test_html_is_self_contained_and_escaped(built: dict) -> None:
    page = report.render(built)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "Movie 3 &lt;b&gt;&amp;" in page and "Movie 3 <b>" not in page


def test_drilldown_marks_what_the_user_did_next(built: dict) -> None:
    user = built["drilldown"][0]
    next_items = {e["item_id"] for e in user["next"]}
    shown = {i["item_id"] for i in user["shown"]["popularity"]}
    page = report.render(built)
    assert next_items & shown
    assert page.count('class="hit"') >= len(next_items & shown)


def test_knob_runs_form_one_curve_from_their_base_in_knob_order() -> None:
    names = ["transformer", "fusion+tail@0.5", "fusion", "fusion+tail@0.25", "other+tail@1"]
    assert report.knob_curves(names) == {
        "fusion": ["fusion", "fusion+tail@0.25", "fusion+tail@0.5"],
        "other": ["other+tail@1"],
    }


def test_trade_off_chart_places_every_recommender_and_joins_the_knob_curve() -> None:
    rows = {
        "fusion": {"ndcg@10": 0.09, "tail_share@10": 0.05, "coverage@10": 0.6},
        "fusion+tail@0.5": {"ndcg@10": 0.08, "tail_share@10": 0.15, "coverage@10": 0.95},
        "transformer": {"ndcg@10": 0.085, "tail_share@10": 0.07, "coverage@10": 0.55},
    }
    colours = dict(zip(rows, report.PALETTE, strict=False))
    page = report.trade_off_charts(rows, colours)
    assert page.count('class="point"') == 2 * len(rows)  # one chart per exposure measure
    assert page.count('class="series"') == 2  # fusion -> fusion+tail@0.5, in each chart
    assert all(f">{name}</text>" in page for name in rows)


def test_retraining_rounds_are_listed_on_the_timeline(built: dict) -> None:
    assert built["retraining"] == []  # no +retrain run; the first scored event is at ts 0
    rounds = [
        {"recommender": "transformer+retrain", "at_event": 10, "at_ts": 86400.0, "kind": "warm-start"}
        | {"version": "v2", "promoted": True, "reason": "not worse", "seconds": 12.5, "cpu_s": 20.25, "reload_s": 4.0},
        {"recommender": "transformer+retrain", "at_event": 20, "at_ts": 2 * 86400.0, "kind": "warm-start"}
        | {"version": None, "promoted": False, "reason": "worse <&>", "seconds": 9.0, "cpu_s": 9.0, "reload_s": 0.0},
    ]
    page = report.render(built | {"retraining": rounds})
    table = page[page.index("Retraining") :]
    cells = re.findall(r"<td>(.*?)</td>", table)
    assert cells[:9] == ["transformer+retrain", "10", "1.0000", "warm-start", "v2", "yes", "not worse", "12.5", "20.2"]
    assert cells[9 + 4 : 9 + 7] == ["–", "no", "worse &lt;&amp;&gt;"]


def test_trainer_rounds_are_marked_on_the_over_time_charts() -> None:
    windows = [
        {"start_ts": 86400.0 * n, "end_ts": 86400.0 * (n + 1)} | dict.fromkeys(report.OVER_TIME, 0.1) for n in (0, 1)
    ]
    rows = {"transformer+retrain": windows}
    rounds = [
        {"recommender": "transformer+retrain", "at_ts": 64800.0, "version": "v2", "promoted": True},
        {"recommender": "transformer+retrain", "at_ts": 108000.0, "version": None, "promoted": False},
    ]
    page = report.over_time_charts(rows, {"transformer+retrain": "#123456"}, rounds)
    labels = re.findall(r'<text class="marker-label"[^>]*fill="([^"]*)">([^<]*)</text>', page)
    assert labels == [("#123456", "v2"), ("#123456", "refused")] * len(report.OVER_TIME)
    first, second = (float(x) for x in re.findall(r'<line class="marker" x1="([\d.]+)"', page)[:2])
    assert first < second  # day 0.75 and 1.25, between the two windows' midpoints
    assert 'class="marker"' not in report.over_time_charts(rows, {"transformer+retrain": "#123456"})
