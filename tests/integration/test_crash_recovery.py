"""kill -9 of a worker mid-stream, restart with its data dir kept: counts stay exact.

The worker is killed before its first offset commit (Faust commits every 2.8 s), so
some partitions have no committed offset, and restarted only once the whole stream is
produced, so it faces the backlog at once during its table recovery: the timing that
exposed Faust dropping fetched records (streams/faust_compat.py, `guard_fetch_holes`).
"""

from __future__ import annotations

import threading
import time

import pytest

from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.replay import Pacer, produce_items, replay
from streamrec.types import Event, Item
from tests.conftest import wait_for
from tests.integration.observe import Lists

pytestmark = pytest.mark.integration

USERS, EVENTS, RATE = 40, 4000, 800.0
KILL_AFTER_S = 1.5  # before Faust's first commit (2.8 s)
BUDGET_S = 30.0 + EVENTS / RATE + 30.0 + 90.0  # stack start, production, restart, catch-up


@pytest.mark.timeout(BUDGET_S)
def test_kill_and_restart_loses_nothing_and_applies_nothing_twice(settings: Settings) -> None:
    items = [Item(f"c{i}", f"Item {i}") for i in range(30)]
    events = [Event(f"u{n % USERS}", f"c{n % 30}", "view", float(n), f"e{n}") for n in range(EVENTS)]
    # A producer retry: the same event ids sent again must not count twice.
    retries = events[100:150]
    expected = {f"u{u}": sum(1 for e in events if e.user_id == f"u{u}") for u in range(USERS)}
    with Stack(settings) as stack:
        produce_items(items, stack.settings)
        lists = Lists(stack.settings, "crash")
        producer = threading.Thread(
            target=replay,
            args=(events[:2000] + retries + events[2000:], stack.settings),
            kwargs={"pacer": Pacer(rate=RATE), "quiet": True},
        )
        producer.start()
        time.sleep(KILL_AFTER_S)
        stack.kill("worker-0")  # SIGKILL: no shutdown, no final commit
        producer.join()
        stack.start_worker("worker-0")  # same name: same RocksDB data dir
        stack.wait_workers_ready(["worker-0"])
        done = wait_for(lambda: lists.reached(expected), 90)
        time.sleep(2)  # let any double application show up
        lists.stop()
    assert done, lists.short(expected)
    assert lists.short(expected) == {}
