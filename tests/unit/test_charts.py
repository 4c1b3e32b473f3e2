"""Charts people read: round ticks, legends beside the plot (never over a line), latency
percentile markers, and where the page came from."""

from __future__ import annotations

import re

from streamrec.infra import report
from streamrec.infra.charts import CHART_W, nice_ticks
from tests.backtest_reports import built_report


def test_ticks_are_round_and_cover_the_data() -> None:
    for lo, hi in [(0.0, 0.0416), (0.0, 337.2), (1.0, 1682.0), (0.013, 0.87), (5.0, 5.0)]:
        ticks = nice_ticks(lo, hi)
        step = round(ticks[1] - ticks[0], 12)
        assert ticks[0] <= lo and ticks[-1] >= hi
        assert 3 <= len(ticks) - 1 <= 10
        assert float(f"{step:.1g}") == step  # one significant digit: 1, 2 or 5 x 10^k


def test_page_has_readable_charts_and_provenance() -> None:
    html = report.render(built_report())
    labels = re.findall(r'class="tick"[^>]*>([^<]*)<', html)
    assert labels and all(len(label.replace(",", "").lstrip("-").partition(".")[2]) <= 3 for label in labels)
    legend_x = [float(x) for x in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="10"', html)]
    assert legend_x and min(legend_x) >= CHART_W  # right of the plot area
    latency = html[html.index('id="freshness"') :]
    assert {"p50", "p99"} <= set(re.findall(r'class="marker-label"[^>]*>([^<]*)<', latency))
    assert re.search(r"from git \S+; replays took", html)
