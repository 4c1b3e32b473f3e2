"""The backtest report: built from synthetic outcomes, rendered, and opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streamrec.infra import backtest, report
from streamrec.models import metrics
from streamrec.models.prequential import Context, Produced, Published, prequential
from streamrec.types import Event, Item

ITEMS = [Item(f"i{n}", f"Movie {n} <b>&", category="Drama" if n % 2 else "Comedy, Drama") for n in range(30)]
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
)


def synthetic_run(name: str, shift: int) -> backtest.Run:
    """Three users with ten scored events each; lists shifted by ``shift`` items."""
    events, lists = [], []
    for u in range(3):
        for n in range(10):
            at = 100.0 + 10 * n + u
            lists.append(Published(f"u{u}", tuple(f"i{(n + j + shift) % 30}" for j in range(20)), n + 1, at - 5 + 0.02 * (u + 1)))
            events.append(Produced(f"u{u}", f"i{n + 2}", 1000.0 * n + u, n + 2, at, "click"))
    return backtest.Run(name, prequential(events, lists), 50, 1.0, 2.0, 3.0, 0)


@pytest.fixture(scope="module")
def built() -> dict:
    runs = [synthetic_run("popularity", 0), synthetic_run("cooccurrence", 1)]
    cut = backtest.Split(warmup=50, train_counts=Counter({f"i{n}": 30 - n for n in range(20)}), warmup_ordinals={"u0": 1})
    cut.scored = [(Event(o.event.user_id, o.event.item_id, "click", o.event.ts), o.event.ordinal) for o in runs[0].outcomes]
    context = Context([i.item_id for i in ITEMS], cut.train_counts, metrics.category_sets(ITEMS))
    config = backtest.BacktestConfig(("popularity", "cooccurrence"), 500.0, None, 4, 64, 7, None, "synthetic")
    return backtest.build_report(runs, cut, context, ITEMS, config, backtest.Settings())


def test_report_json_has_the_required_keys(built: dict, tmp_path: Path) -> None:
    json_path, _ = report.write(built, tmp_path)
    data = orjson.loads(json_path.read_bytes())
    required = [f"{m}@{k}" for k in (10, 20) for m in ("hr", "ndcg", "mrr", "coverage", "gini", "tail_share", "arp", "novelty", "ild")]
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


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(built: dict, tmp_path: Path) -> None:
    _, html_path = report.write(built, tmp_path / "out")
    base = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,4000"]
    dom = subprocess.run([*base, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    shot = tmp_path / "report.png"
    subprocess.run([*base, f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=120, check=True)
    assert dom.count('<svg class="chart over-time"') == len(report.OVER_TIME)
    for kind in ("long-tail", "latency"):
        assert f'<svg class="chart {kind}"' in dom
    polylines = re.findall(r'<polyline class="series"[^>]*points="([^"]+)"', dom)
    assert len(polylines) >= len(report.OVER_TIME) * 2 + 4 + 2
    assert all(len(points.split()) >= 2 for points in polylines)
    metrics_rows = re.search(r'<table class="metrics">(.*?)</table>', dom, re.S).group(1)
    assert metrics_rows.count("<tr>") == 3  # header + two recommenders
    assert dom.count('<div class="user">') == len(built["drilldown"]) > 0
    assert shot.stat().st_size > 20_000  # a blank page is a few KB


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
