"""The dashboard's Experiments panel in headless Chromium over a stack running an A/B experiment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from streamrec.infra.broker import READY_TIMEOUT_S, free_port
from streamrec.infra.stack import SERVER_READY_TIMEOUT_S, WORKER_READY_TIMEOUT_S, Stack
from streamrec.settings import Settings
from tests.conftest import wait_for
from tests.e2e.test_dashboard_browser import CHROMIUM, CHROMIUM_RUN_S, STACK_WAIT_S, chromium, part
from tests.traffic import Trickle, feed

# The trickle's users t0..t4 fall into both arms of this experiment (t0-t2: pop, t3-t4: co).
SPEC = "live=pop:popularity,co:cooccurrence"
# The server summarises at most every 5 s: a few summaries make a line.
SUMMARIES = 3
BUDGET_S = READY_TIMEOUT_S + WORKER_READY_TIMEOUT_S + SERVER_READY_TIMEOUT_S + 2 * STACK_WAIT_S + CHROMIUM_RUN_S

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("experiment-page")
    settings = Settings.load(env={}, overrides={"data_dir": str(data), "http_port": free_port(), "experiment": SPEC})
    with Stack(settings, serve=True) as running:
        yield running


@pytest.mark.timeout(BUDGET_S)
def test_the_panel_shows_both_arms_filling_in_with_intervals(stack: Stack, tmp_path: Path) -> None:
    feed(stack)
    http = httpx.Client(base_url=stack.http_url, timeout=5)

    def filled() -> bool:
        body = http.get("/v1/experiments").json()
        arms = body["experiments"]["live"]["arms"]
        return all(arm["lists"] > 0 for arm in arms.values()) and len(body["history"]) >= SUMMARIES

    with Trickle(stack):
        assert wait_for(filled, STACK_WAIT_S, every_s=1.0)
        dom = chromium(tmp_path, f"{stack.http_url}/dashboard", "--dump-dom")
    rows = part(r'id="experiments">(.*?)</tbody>', dom)
    assert re.findall(r'<tr data-arm="([^"]+)"', rows) == ["pop", "co"]
    assert re.search(r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", rows)  # an estimate with its interval
    assert re.search(r"(wait|promote|retire): ", rows)  # the challenger's decision, from the server
    lines = re.findall(r'<polyline[^>]*points="([^"]+)"', part(r'id="chart-experiments">(.*?)</svg>', dom))
    assert len(lines) >= 2 and all(len(points.split()) >= 2 for points in lines)
