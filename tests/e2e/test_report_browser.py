"""The backtest report opened in headless Chromium (Debian's package; .ci/run installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streamrec.infra import report
from tests.backtest_reports import built_report
from tests.browser import CHROMIUM_FLAGS

# One Chromium run (DOM dump or screenshot) on a busy machine; the test makes two.
CHROMIUM_RUN_S = 120.0

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(2 * CHROMIUM_RUN_S)
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    built = built_report()
    _, html_path = report.write(built, tmp_path / "out")
    base = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,4000"]
    dom = subprocess.run(
        [*base, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=CHROMIUM_RUN_S, check=True
    ).stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=CHROMIUM_RUN_S, check=True
    )
    assert dom.count('<svg class="chart over-time"') == len(report.OVER_TIME)
    for kind in ("long-tail", "latency"):
        assert f'<svg class="chart {kind}"' in dom
    polylines = re.findall(r'<polyline class="series"[^>]*points="([^"]+)"', dom)
    assert len(polylines) >= len(report.OVER_TIME) * 2 + 4 + 2
    assert all(len(points.split()) >= 2 for points in polylines)
    metrics_table = re.search(r'<table class="metrics">(.*?)</table>', dom, re.S)
    assert metrics_table is not None
    metrics_rows = metrics_table.group(1)
    assert metrics_rows.count("<tr>") == 3  # header + two recommenders
    assert dom.count('<div class="user">') == len(built["drilldown"]) > 0
    assert shot.stat().st_size > 20_000  # a blank page is a few KB
