"""/dashboard in headless Chromium over a real stack: the charts draw and keep updating.

Needs Debian's chromium (.ci/run installs it). The page polls the server once a second;
Chromium runs it under a virtual-time budget (timers fast-forward, fetches are real),
then dumps the DOM, which the test reads; one screenshot is kept for a human.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from streamrec.infra.broker import READY_TIMEOUT_S
from streamrec.infra.stack import SERVER_READY_TIMEOUT_S, WORKER_READY_TIMEOUT_S, Stack
from tests.browser import CHROMIUM_FLAGS
from tests.conftest import wait_for
from tests.traffic import USERS, Trickle, feed, wait_for_lists

CHROMIUM = "/usr/bin/chromium"
WINDOW = "--window-size=1400,1400"
# Virtual milliseconds the page runs before the dump: several of its 1 s polls.
VIRTUAL_TIME_MS = 6000
# One Chromium run on a busy 2-core machine (start, polls, dump or screenshot).
CHROMIUM_RUN_S = 120.0
# Waits on the stack: every user's list, then a few dashboard snapshots.
STACK_WAIT_S = 90.0
BUDGET_S = READY_TIMEOUT_S + WORKER_READY_TIMEOUT_S + SERVER_READY_TIMEOUT_S + 2 * STACK_WAIT_S + 2 * CHROMIUM_RUN_S

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM} (apt-get install chromium)"),
]


def chromium(tmp_path: Path, url: str, *args: str) -> str:
    profile = tmp_path / "profile"
    command = [
        CHROMIUM,
        *CHROMIUM_FLAGS,
        WINDOW,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_RUN_S, check=True).stdout


def part(pattern: str, dom: str) -> str:
    """The first group of ``pattern`` in the DOM (which must match)."""
    match = re.search(pattern, dom, re.S)
    assert match, f"{pattern} not in the page"
    return match.group(1)


def text_of(dom: str, element_id: str) -> str:
    return part(rf'id="{element_id}"[^>]*>([^<]*)<', dom)


@pytest.mark.timeout(BUDGET_S)
def test_dashboard_renders_live_figures_and_a_users_list(stack: Stack, tmp_path: Path) -> None:
    expected = feed(stack)
    http = httpx.Client(base_url=stack.http_url, timeout=5)
    user = USERS[0]

    def stats() -> dict:
        return http.get("/v1/dashboard/stats", params={"user": user}).json()

    assert wait_for_lists(stack, expected, STACK_WAIT_S)
    url = f"{stack.http_url}/dashboard?user={user}"
    with Trickle(stack):
        # A few server-side snapshots first, so the charts have a history to draw.
        assert wait_for(lambda: len(stats()["history"]) >= 3 and stats()["events_per_s"] > 0, STACK_WAIT_S, every_s=0.5)
        dom = chromium(tmp_path, url, "--dump-dom")
        shot = tmp_path / "dashboard.png"
        chromium(tmp_path, url, f"--screenshot={shot}")
    print(f"dashboard screenshot: {shot}")

    assert int(part(r'<body[^>]*data-updates="(\d+)"', dom)) >= 2  # it polled and re-rendered
    assert float(text_of(dom, "events-rate")) > 0
    assert text_of(dom, "freshness-p50").endswith(" ms") and text_of(dom, "freshness-p99").endswith(" ms")
    for chart in ("chart-events", "chart-freshness", "chart-dlq"):
        lines = re.findall(
            r'<polyline[^>]*points="([^"]+)"', part(rf'<svg class="chart" id="{chart}">(.*?)</svg>', dom)
        )
        assert lines and all(len(points.split()) >= 2 for points in lines), chart
    listed = re.findall(r'<li data-item="([^"]+)"', part(r'id="user-list">(.*?)</ol>', dom))
    served = [i["item_id"] for i in http.get(f"/v1/users/{user}/recommendations").json()["items"]]
    assert listed == served
    assert len(re.findall(r"<li>", part(r'id="user-events">(.*?)</ol>', dom))) == expected[user]
    assert "malformed JSON" in part(r'id="dlq-reasons">(.*?)</ul>', dom)
    workers = part(r'id="workers">(.*?)</tbody>', dom)
    assert stack.metrics_urls["worker-0"] in workers and '<td class="ok">up</td>' in workers
    assert shot.stat().st_size > 20_000  # a blank page is a few KB
