"""One hostile-input run on a whole stack (broker, worker, HTTP server), counted.

Everything a foreign or broken client can send, at once, on a running stack: malformed
events between good ones (fast, then slow), one user written by a murmur2 and by a CRC32
producer, poison on ``recommendations`` and ``events.learning``, malformed lists for a
user followed by a GET, and bad or oversized HTTP bodies. The run ends with a table of
counts (``pytest tests/integration/test_hostile_run.py -s`` prints it) and asserts:
0 good events lost, 0 users split across partitions, 0 agent crashes, 0 HTTP 5xx, every
bad event dead-lettered once, and a server still serving new lists.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import httpx
import pytest

from streamrec.infra.broker import free_port
from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.contracts import encode_event
from streamrec.streams.kafka import partition_for
from streamrec.streams.replay import produce_raw
from tests.conftest import wait_for
from tests.integration.observe import DeadLetters, Lists
from tests.integration.test_faults import CATCH_UP_S, HUGE_BYTES, STACK_START_S, Tagged, crc32_misrouted, malformed

pytestmark = pytest.mark.integration

SLOW_GAP_S = 0.3  # the slow pass: one record at a time, as a trickling client would
GOOD_PER_BAD = 5
HTTP_TIMEOUT_S = 15.0
RUN_BUDGET_S = STACK_START_S + 3 * CATCH_UP_S + (GOOD_PER_BAD + 1) * 10 * SLOW_GAP_S

POISON_LISTS = [
    b"{",
    b'{"user_id": ["x"], "items": []}',
    b'{"user_id": "VICTIM"}',
    b'{"user_id": "VICTIM", "items": null}',
    b'{"user_id": "VICTIM", "items": "everything"}',
    b'{"user_id": "VICTIM", "items": [{"score": 1.0}]}',
    b'{"user_id": "VICTIM", "items": [{"item_id": "x", "score": 1, "reason": "<script>alert(1)</script>"}]}',
]
POISON_LEARNING = [b"not json", b'{"p": "0", "e": []}', b'{"p": 0, "e": [[10000000000, "forged", 0, 1.0, []]]}']
BAD_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b'{"user_id": "h", "item_id": "i", "event_type": ["view"]}'),
    ("application/json", b'{"user_id": "h", "item_id": "i", "event_type": {"view": 1}}'),
    ("application/json", b'{"user_id": "h", "item_id": "i", "event_type": "view", "ts": ' + b"9" * 400 + b"}"),
    ("application/json", b'{"user_id": "h", "item_id": "i", "event_type": "view", "ts": NaN}'),
    ("application/json", b"{not json"),
    ("application/json", b""),
    ("text/plain", b"user_id=h"),
    ("application/json", b" " * 2_000_000),
    ("application/json", b"[" * 100_000),
]


class ListPartitions:
    """The partitions each user's lists were published on."""

    def __init__(self, settings: Settings) -> None:
        self.seen: dict[str, set[int]] = defaultdict(set)
        self._lock = threading.Lock()
        self._reader = TopicReader(settings.bootstrap_servers, settings.topic_recommendations, self._on, "split")
        self._reader.start()

    def _on(self, records: list[Record]) -> None:
        with self._lock:
            for record in records:
                if record.key is not None:
                    self.seen[record.key.decode(errors="replace")].add(record.partition)

    def split(self, users: list[str], partitions: int) -> list[str]:
        """Users with a list on any partition other than the one their id hashes to."""
        with self._lock:
            return [u for u in users if self.seen.get(u, set()) - {partition_for(u.encode(), partitions)}]

    def stop(self) -> None:
        self._reader.stop()


def interleave(t: Tagged, marker: str) -> tuple[list[tuple[bytes | None, bytes]], list]:
    """Good events with one malformed record after every `GOOD_PER_BAD`; returns (records, good)."""
    records, good = [], []
    for bad in malformed(t, marker):
        for _ in range(GOOD_PER_BAD):
            event = t.good()
            good.append(event)
            records.append((event.user_id.encode(), encode_event(event)))
        records.append(bad)
    return records, good


def agent_crashes(stack: Stack) -> int:
    """Times Faust reports a crashed agent in the worker logs."""
    return sum(path.read_text(errors="replace").count("Crashed reason=") for path in stack.log_dir.glob("worker*"))


@pytest.mark.timeout(RUN_BUDGET_S)
def test_hostile_run_loses_nothing_and_every_process_keeps_serving(tmp_path) -> None:
    overrides = {"data_dir": str(tmp_path / "data"), "http_port": free_port(), "recommender": "popularity"}
    with Stack(Settings.load(env={}, overrides=overrides), serve=True) as stack:
        s = stack.settings
        t = Tagged(s)
        lists, dead, where = Lists(s, "hostile"), DeadLetters(s, "hostile"), ListPartitions(s)
        http = httpx.Client(base_url=stack.http_url, timeout=HTTP_TIMEOUT_S)
        statuses: list[int] = []

        fast, good_fast = interleave(t, f"{t.tag}-fast")
        t.produce(fast, **{"message.max.bytes": 4 * HUGE_BYTES})
        slow, good_slow = interleave(t, f"{t.tag}-slow")
        for record in slow:
            t.produce([record], **{"message.max.bytes": 4 * HUGE_BYTES})
            time.sleep(SLOW_GAP_S)

        shared = crc32_misrouted(t.users, s.partitions)  # one user, two partitioners
        via_murmur2 = t.good(user=shared)
        via_crc32 = t.good(user=shared, event_id=f"{t.tag}-crc32")
        t.produce([(shared.encode(), encode_event(via_murmur2))])
        t.produce([(shared.encode(), encode_event(via_crc32))], partitioner="consistent_random")

        victim = t.users[1]
        produce_raw(s, s.topic_recommendations, [(victim, p.replace(b"VICTIM", victim.encode())) for p in POISON_LISTS])
        produce_raw(s, s.topic_learning, [(None, p) for p in POISON_LEARNING])
        statuses.append(http.get(f"/v1/users/{victim}/recommendations").status_code)
        for content_type, body in BAD_BODIES:
            statuses.append(http.post("/v1/events", content=body, headers={"content-type": content_type}).status_code)

        good = [*good_fast, *good_slow, via_murmur2]
        expected = {u: sum(1 for e in good if e.user_id == u) for u in {e.user_id for e in good}}
        markers = [f"{t.tag}-{kind}{i}" for kind in ("fast", "slow") for i in range(len(malformed(t, "")))]
        markers.append(f"{t.tag}-crc32")
        wait_for(lambda: lists.reached(expected) and all(dead.about(m.encode()) for m in markers), CATCH_UP_S)

        newcomer = f"{t.tag}-newcomer"
        posted = {"user_id": newcomer, "item_id": t.items[2].item_id, "event_type": "click"}
        statuses.append(http.post("/v1/events", json=posted).status_code)
        served = wait_for(lambda: http.get(f"/v1/users/{newcomer}/recommendations").status_code == 200, CATCH_UP_S)
        statuses.append(http.get(f"/v1/users/{victim}/recommendations").status_code)

        lost = sum(n - (lists.events.get(u) or 0) for u, n in expected.items() if (lists.events.get(u) or 0) < n)
        split = where.split([*expected, newcomer], s.partitions)
        letters = {m: len(dead.about(m.encode())) for m in markers}
        crashes = agent_crashes(stack)
        alive = {name: process.poll() is None for name, process in stack.processes.items()}
        for observer in (lists, dead, where):
            observer.stop()

    counts = {
        "good events": len(good),
        "good events lost": lost,
        "malformed events": len(markers),
        "dead-lettered once": sum(n == 1 for n in letters.values()),
        "users split across partitions": len(split),
        "agent crashes": crashes,
        "HTTP requests": len(statuses),
        "HTTP 5xx": sum(code >= 500 for code in statuses),
        "processes alive": f"{sum(alive.values())}/{len(alive)}",
        "new list served after the run": served,
    }
    print("\n".join(f"{name:>32}: {value}" for name, value in counts.items()))
    assert (lost, split, crashes) == (0, [], 0), counts
    assert letters == dict.fromkeys(markers, 1), letters
    assert all(code < 500 for code in statuses), statuses
    assert all(alive.values()) and served, counts
