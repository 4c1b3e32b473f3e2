"""Fault injection on the embedded broker: crashes, a frozen broker, hostile data.

Every test asserts the same three things whatever it breaks: each good event is applied
exactly once (the user's ``user_events`` on its last list equals the truth), each bad
record is on ``events.dlq`` once with a reason, and the worker is still running.
Budgets are wall-clock ceilings on a busy 2-core machine; the timeout of each test is
derived from its own budget.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka import Producer

from streamrec.infra.broker import free_port
from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.contracts import encode_event
from streamrec.streams.kafka import partition_for, producer_config
from streamrec.streams.replay import Pacer, produce_items, produce_raw, replay
from streamrec.streams.worker import FAULT_ENV
from streamrec.types import EVENT_WEIGHTS, Event, Item
from tests.conftest import wait_for
from tests.integration.observe import DeadLetters, Lists

pytestmark = pytest.mark.integration

# Start-up of a stack (broker, topics, a worker joining its group) and of a restarted
# worker, at most, on a busy machine.
STACK_START_S = 30.0
RESTART_S = 30.0
# Time for a backlog of a few thousand events to be applied, at most.
CATCH_UP_S = 60.0
# Parked events wait this long for their item: far longer than good events take to be
# applied, so a test can see them still parked while everything else has gone through.
PARK_S = 15.0
MAX_PARKED = 500
# Fault-injection marks for the hostile stack: the first fails once (a retry applies it),
# the second every time (it is dead-lettered).
FAULTS = "boom-once:1,boom-always"


def expected_counts(events: list[Event]) -> dict[str, int]:
    """Applied events per user, counting each event id once (retries repeat ids)."""
    return dict(Counter(e.user_id for e in {e.event_id: e for e in events}.values()))


def assert_alive(stack: Stack) -> None:
    for name, process in stack.processes.items():
        assert process.poll() is None, f"{name} exited with {process.returncode}; see {stack.log_dir}"


# -- crashes and a frozen broker (a stack each) ---------------------------------------

SEED = 20261202
KILLS = 3
KILL_USERS, KILL_EVENTS, KILL_RATE = 40, 6000, 500.0
LATE_ANNOUNCE_S = 3.0  # events for these items arrive before the items do: parked across kills
KILL_BUDGET_S = STACK_START_S + KILLS * 5.0 + RESTART_S + KILL_EVENTS / KILL_RATE + CATCH_UP_S


@pytest.mark.timeout(KILL_BUDGET_S)
def test_kill_9_at_random_moments_under_load_applies_every_event_once(settings: Settings) -> None:
    rng = random.Random(SEED)
    items = [Item(f"c{i}", f"Item {i}") for i in range(30)]
    late = [Item(f"late{i}", f"Late {i}") for i in range(3)]
    events = [
        Event(f"u{n % KILL_USERS}", f"late{n % 3}" if n % 97 == 0 else f"c{n % 30}", "view", float(n), f"e{n}")
        for n in range(KILL_EVENTS)
    ]
    stream = events[:1000] + events[100:150] + events[1000:]  # a producer retry: ids seen before
    expected = expected_counts(events)
    with Stack(settings) as stack:
        produce_items(items, stack.settings)
        lists = Lists(stack.settings, "kill")
        announce = threading.Timer(LATE_ANNOUNCE_S, produce_items, (late, stack.settings))
        producer = threading.Thread(
            target=replay, args=(stream, stack.settings), kwargs={"pacer": Pacer(rate=KILL_RATE), "quiet": True}
        )
        announce.start()
        producer.start()
        for _ in range(KILLS):  # at random moments: while consuming, starting up or recovering
            time.sleep(rng.uniform(0.5, 5.0))
            stack.kill("worker-0")
            stack.start_worker("worker-0")
        stack.wait_workers_ready(["worker-0"])
        producer.join()
        announce.join()
        wait_for(lambda: lists.reached(expected), CATCH_UP_S)
        time.sleep(2)  # let any double application show up
        lists.stop()
        assert_alive(stack)
    assert lists.short(expected) == {}


FREEZE_S = 6.0  # under the 10 s session: the group survives, every client must wait it out
FREEZE_EVENTS, FREEZE_RATE = 4000, 500.0
FREEZE_BUDGET_S = STACK_START_S + FREEZE_EVENTS / FREEZE_RATE + FREEZE_S + CATCH_UP_S


@pytest.mark.timeout(FREEZE_BUDGET_S)
def test_broker_frozen_and_thawed_under_load_loses_nothing(settings: Settings) -> None:
    events = [Event(f"u{n % 30}", f"c{n % 20}", "click", float(n), f"f{n}") for n in range(FREEZE_EVENTS)]
    expected = expected_counts(events)
    with Stack(settings) as stack:
        produce_items([Item(f"c{i}", f"Item {i}") for i in range(20)], stack.settings)
        lists = Lists(stack.settings, "freeze")
        producer = threading.Thread(
            target=replay, args=(events, stack.settings), kwargs={"pacer": Pacer(rate=FREEZE_RATE), "quiet": True}
        )
        producer.start()
        time.sleep(2.0)
        stack.signal_broker(signal.SIGSTOP)
        try:
            time.sleep(FREEZE_S)
        finally:
            stack.signal_broker(signal.SIGCONT)
        producer.join()
        wait_for(lambda: lists.reached(expected), CATCH_UP_S)
        time.sleep(1)
        lists.stop()
        assert_alive(stack)
    assert lists.short(expected) == {}


# -- hostile data (one stack shared by the tests below) ---------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose worker parks for `PARK_S`, injects `FAULTS`, and learns popularity."""
    overrides = {
        "data_dir": str(tmp_path_factory.mktemp("hostile")),
        "http_port": free_port(),
        "recommender": "popularity",
        "park_s": PARK_S,
        "max_parked": MAX_PARKED,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULT_ENV, FAULTS)
        with Stack(Settings.load(env={}, overrides=overrides)) as stack:
            yield stack


class Tagged:
    """Ids unique to one test, so tests sharing a stack do not see each other's data."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tag = uuid.uuid4().hex[:6]
        self.items = [Item(f"{self.tag}-i{k}", f"Item {k}") for k in range(5)]
        self.users = [f"{self.tag}-u{k}" for k in range(8)]
        self.n = 0
        produce_items(self.items, settings)

    def good(self, user: str | None = None, item: str | None = None, event_id: str | None = None) -> Event:
        self.n += 1
        return Event(
            user or self.users[self.n % len(self.users)],
            item or self.items[self.n % len(self.items)].item_id,
            "view",
            1000.0 + self.n,
            event_id or f"{self.tag}-g{self.n}",
        )

    def produce(self, records: list[tuple[bytes | None, bytes]], **config: object) -> None:
        out = Producer(producer_config(self.settings, **config))
        for key, value in records:
            out.produce(self.settings.topic_events, key=key, value=value)
        assert out.flush(30) == 0


HUGE_BYTES = 1_500_000


def crc32_misrouted(users: list[str], partitions: int) -> str:
    """A user whom librdkafka's default partitioner (CRC32) sends to another partition."""
    return next(u for u in users if zlib.crc32(u.encode()) % partitions != partition_for(u.encode(), partitions))


def malformed(t: Tagged, marker: str) -> list[tuple[bytes | None, bytes]]:
    """One record of each kind of malformed event, each carrying ``marker`` + its index."""
    user, item = t.users[0], t.items[0].item_id
    valid = {"user_id": user, "item_id": item, "event_type": "view"}
    m = [f"{marker}{i}" for i in range(10)]
    return [
        (user.encode(), orjson.dumps({"event_id": m[0], **valid, "pad": "x" * HUGE_BYTES})),
        (user.encode(), orjson.dumps({**valid, "event_type": ["view"], "event_id": m[1]})),
        (user.encode(), orjson.dumps({**valid, "event_type": {"view": 1}, "event_id": m[2]})),
        (user.encode(), orjson.dumps({**valid, "event_id": m[3]})[:-1] + b', "ts": NaN}'),
        (b"\xff\xfe", orjson.dumps({**valid, "user_id": "\ufffd\ufffd", "event_id": m[4]})),
        (user.encode(), orjson.dumps({"user_id": user, "event_id": m[5]})),
        (user.encode(), orjson.dumps([m[6], user, item])),
        (user.encode(), b'{"event_id": "' + m[7].encode() + b'", "user_id": "\xff\xfe"}'),
        (user.encode(), b'{"event_id": "' + m[8].encode() + b'", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}"),
        (user.encode(), orjson.dumps({**valid, "ts": "yesterday", "event_id": m[9]})),
    ]


CORPUS_BUDGET_S = STACK_START_S + CATCH_UP_S


@pytest.mark.timeout(CORPUS_BUDGET_S)
def test_malformed_corpus_is_dead_lettered_and_every_good_event_applied(hostile: Stack) -> None:
    t = Tagged(hostile.settings)
    marker = f"{t.tag}-bad"
    bad = malformed(t, marker)
    good = [t.good() for _ in range(10 * len(bad))]
    records = [
        r
        for i, b in enumerate(bad)
        for r in (*((e.user_id.encode(), encode_event(e)) for e in good[10 * i : 10 * i + 10]), b)
    ]
    misrouted = crc32_misrouted(t.users, hostile.settings.partitions)
    lists, dead = Lists(hostile.settings, "corpus"), DeadLetters(hostile.settings, "corpus")
    t.produce(records, **{"message.max.bytes": 4 * HUGE_BYTES})
    wrong = t.good(user=misrouted, event_id=f"{marker}-crc32")
    t.produce([(misrouted.encode(), encode_event(wrong))], partitioner="consistent_random")
    expected = expected_counts(good)
    markers = [f"{marker}{i}" for i in range(len(bad))] + [f"{marker}-crc32"]
    wait_for(lambda: lists.reached(expected) and all(dead.about(m.encode()) for m in markers), CATCH_UP_S)
    lists.stop()
    dead.stop()
    assert lists.short(expected) == {}
    letters = {m: dead.about(m.encode()) for m in markers}
    assert {m: len(found) for m, found in letters.items()} == dict.fromkeys(markers, 1)
    assert all(found[0]["reason"] for found in letters.values())
    assert "murmur2" in letters[f"{marker}-crc32"][0]["reason"]
    assert "must equal user_id" in letters[f"{marker}4"][0]["reason"]
    assert_alive(hostile)


POISON_BUDGET_S = STACK_START_S + 2 * CATCH_UP_S
PROBE_ROUNDS = 5


@pytest.mark.timeout(POISON_BUDGET_S)
def test_poison_on_every_topic_the_worker_reads_changes_nothing(hostile: Stack) -> None:
    """Bad items, forged learning records and bad events, interleaved with good ones:
    item-side statistics (popularity scores) still equal the counts of the good events."""
    s = hostile.settings
    t = Tagged(s)
    forged_item = f"{t.tag}-forged"
    bad_items = [
        (None, raw)
        for raw in (
            b"{",
            b"[]",
            b"",
            b'{"item_id": [], "title": "x"}',
            b'{"item_id": "x"}',
            b'{"item_id": "y", "title": 7}',
            b'{"item_id": "z", "title": "t", "available": "yes"}',
            b"\xff\xfe",
        )
    ]
    real = t.items[1].item_id
    bad_learning = [
        (None, raw)
        for raw in (
            b"not json",
            b"[]",
            b"null",
            b'{"p": 0}',
            b'{"p": "0", "e": []}',
            b'{"p": 99, "e": [[1, "x", 0, 1.0, []]]}',
            b'{"p": 0, "e": [[-5, "x", 0, 1.0, []]]}',
            b'{"p": 0, "e": [[5, "x", 9, 1.0, []]]}',
            b'{"p": 0, "e": [[5, "x", 0, "soon", []]]}',
            b'{"p": 0, "e": [[true, "x", 0, 1.0, []]]}',
            b'{"p": 0, "e": [[5, "x", 0, 1.0, [["y", 0]]]]}',
            b'{"p": 0, "e": [[5.5, "x", 0, 1.0, []]]}',
            # One genuine-looking entry for a real item, rejected with the bad one beside it.
            orjson.dumps({"p": 0, "e": [[7, real, 0, 1.0, []], [8, real, 42, 1.0, []]]}),
            # Offsets far ahead: a high watermark would drop every genuine entry after them.
            *(orjson.dumps({"p": p, "e": [[10**15, forged_item, 0, 1.0, []]]}) for p in range(s.partitions)),
        )
    ]
    counts = {item.item_id: 25 * (k + 1) for k, item in enumerate(t.items)}
    good = [t.good(item=item) for item, n in counts.items() for _ in range(n)]
    random.Random(SEED).shuffle(good)
    bad = malformed(t, f"{t.tag}-bad")[1:]
    records = [(e.user_id.encode(), encode_event(e)) for e in good]
    for i, b in enumerate(bad):
        records.insert(i * len(records) // len(bad), b)
    lists = Lists(s, "poison")
    half = len(records) // 2  # bad items and learning records before and amid the good events
    produce_raw(s, s.topic_items, bad_items[:4])
    produce_raw(s, s.topic_learning, bad_learning[:8])
    t.produce(records[:half])
    produce_raw(s, s.topic_items, bad_items[4:])
    produce_raw(s, s.topic_learning, bad_learning[8:])
    t.produce(records[half:])
    expected = expected_counts(good)
    assert wait_for(lambda: lists.reached(expected), CATCH_UP_S), lists.short(expected)
    truth = {item: n * EVENT_WEIGHTS["view"] for item, n in counts.items()}
    top = sorted(truth, key=truth.get)[1:]  # all but the least viewed: surely in any top-K
    scores: dict[str, float] = {}
    for round_ in range(PROBE_ROUNDS):  # learning goes through Kafka: converge, never overshoot
        probe = f"{t.tag}-probe{round_}"
        t.produce([(probe.encode(), encode_event(t.good(user=probe, item=t.items[0].item_id)))])
        assert wait_for(lambda probe=probe: probe in lists.latest, CATCH_UP_S / PROBE_ROUNDS)
        scores = {e["item_id"]: e["score"] for e in lists.latest[probe]["items"]}
        assert all(scores.get(item, 0) <= truth[item] for item in top)
        if all(scores.get(item) == truth[item] for item in top):
            break
    lists.stop()
    assert {item: scores.get(item) for item in top} == {item: truth[item] for item in top}
    assert lists.short(expected) == {}
    assert_alive(hostile)


FLOOD = 1500
FLOOD_BUDGET_S = STACK_START_S + 2 * CATCH_UP_S + PARK_S


@pytest.mark.timeout(FLOOD_BUDGET_S)
def test_flood_of_unknown_items_waits_aside_and_good_events_go_through(hostile: Stack) -> None:
    s = hostile.settings
    t = Tagged(s)
    ghost = f"{t.tag}-ghost"
    flood = [t.good(user=f"{t.tag}-f{n % 30}", item=f"{ghost}{n}") for n in range(FLOOD)]
    late_items = [Item(f"{t.tag}-late{k}", f"Late {k}") for k in range(2)]
    late = [t.good(user=f"{t.tag}-l{n % 3}", item=late_items[n % 2].item_id) for n in range(10)]
    good = [t.good() for _ in range(200)]
    lists, dead = Lists(s, "flood"), DeadLetters(s, "flood")
    # The flood overflows the parking lot: all but `MAX_PARKED` are dead-lettered at once.
    t.produce([(e.user_id.encode(), encode_event(e)) for e in flood])
    assert wait_for(lambda: len(dead.about(ghost.encode())) >= FLOOD - MAX_PARKED, CATCH_UP_S)
    t.produce([(e.user_id.encode(), encode_event(e)) for e in late + good])
    assert wait_for(lambda: lists.reached(expected_counts(good)), CATCH_UP_S)
    still_parked = FLOOD - len(dead.about(ghost.encode()))
    produce_items(late_items, s)  # after their events: those were parked and now apply
    expected = expected_counts(good + late)
    assert wait_for(lambda: lists.reached(expected) and len(dead.about(ghost.encode())) >= FLOOD, CATCH_UP_S + PARK_S)
    lists.stop()
    dead.stop()
    assert still_parked > 0  # good events went through while the flood still waited
    assert lists.short(expected) == {}
    letters = dead.about(ghost.encode())
    assert sorted(orjson.loads(letter["original"])["event_id"] for letter in letters) == sorted(
        e.event_id for e in flood
    )
    assert all("unknown item_id" in letter["reason"] for letter in letters)
    pushed_out = sum("parking full" in letter["reason"] for letter in letters)
    assert FLOOD - MAX_PARKED <= pushed_out < FLOOD  # the rest waited `PARK_S` in vain
    assert not dead.about(f"{t.tag}-late".encode())
    assert_alive(hostile)


INJECTED_BUDGET_S = STACK_START_S + CATCH_UP_S


@pytest.mark.timeout(INJECTED_BUDGET_S)
def test_injected_processing_failure_neither_loses_nor_stalls_what_follows(hostile: Stack) -> None:
    t = Tagged(hostile.settings)
    events = [t.good() for _ in range(30)] + [t.good(event_id="boom-once")] + [t.good() for _ in range(30)]
    events += [t.good(event_id="boom-always")] + [t.good() for _ in range(30)]
    lists, dead = Lists(hostile.settings, "boom"), DeadLetters(hostile.settings, "boom")
    t.produce([(e.user_id.encode(), encode_event(e)) for e in events])
    expected = expected_counts([e for e in events if e.event_id != "boom-always"])
    wait_for(lambda: lists.reached(expected) and dead.about(b"boom-always"), CATCH_UP_S)
    lists.stop()
    dead.stop()
    ours = [(d["reason"], d["source"]) for d in dead.about(t.tag.encode())]
    assert lists.short(expected) == {}, (ours, str(hostile.log_dir))
    [letter] = dead.about(b"boom-always")
    assert "InjectedFault" in letter["reason"]
    assert not dead.about(b"boom-once")
    assert_alive(hostile)
