"""The batch processor without Faust: a fake port records sends and settles."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streamrec.models.registry import RecommenderOptions, make_recommender
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record
from streamrec.streams.catalog import Catalog
from streamrec.streams.contracts import MAX_DEAD_LETTER_BYTES, encode_event, encode_item
from streamrec.streams.kafka import partition_for
from streamrec.streams.learning import LearningLog
from streamrec.streams.model_host import ModelHost
from streamrec.streams.processor import Delivery, EventProcessor, fault_injector
from streamrec.streams.state import UserState
from streamrec.types import Event, Item

PARTITIONS = 4


class PartitionedUsers(dict):
    """Like Faust's RocksDB table: one store per partition, the current event's used."""

    def __init__(self) -> None:
        super().__init__()
        self.partition = -1

    def get(self, user: str, default: object = None) -> object:
        return super().get((self.partition, user), default)

    def __setitem__(self, user: str, value: dict) -> None:
        super().__setitem__((self.partition, user), value)


class FakePort:
    def __init__(self, users: PartitionedUsers) -> None:
        self.users = users
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.settled: list[int] = []
        self.fail_sends = 0

    async def send(self, role: str, key: bytes | None, value: bytes) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionError("broker gone")
        self.sent.append((role, key, value))

    async def flush(self) -> None:
        pass

    def enter(self, delivery: Delivery) -> None:
        self.users.partition = delivery.partition

    def settle(self, delivery: Delivery) -> None:
        self.settled.append(delivery.offset)

    def of(self, role: str) -> list[dict]:
        return [orjson.loads(value) for r, _, value in self.sent if r == role]


class Fixture:
    def __init__(self, tmp_path: Path, fault: str = "", **overrides: object) -> None:
        self.settings = Settings.load(
            env={},
            overrides={
                "data_dir": str(tmp_path),
                "model_dir": str(tmp_path / "m"),
                "partitions": PARTITIONS,
                **overrides,
            },
        )
        self.catalog = Catalog()
        self.announce("i0", "i1", "i2")
        host = ModelHost(
            self.settings,
            make_recommender("popularity", RecommenderOptions.of(self.settings)),
            self.catalog,
            LearningLog(),
        )
        self.users = PartitionedUsers()
        self.port = FakePort(self.users)
        self.processor = EventProcessor(self.settings, host, self.users, self.port, fault_injector(fault))
        self.offsets: Iterator[int] = iter(range(10**6))

    def announce(self, *item_ids: str) -> None:
        self.catalog.on_records([Record(None, encode_item(Item(i, i)), 0, 0, 0) for i in item_ids])

    def record(self, user: str, item: str, event_id: str | None = None, **kw: object) -> Delivery:
        value = encode_event(Event(user, item, "view", 1.0, event_id))
        key = kw.get("key", user.encode())
        partition = kw.get("partition", partition_for(user.encode(), PARTITIONS))
        return Delivery(key, kw.get("value", value), "events", partition, next(self.offsets))

    def run(self, *records: Delivery) -> None:
        asyncio.run(self.processor.handle(list(records)))

    def events_of(self, user: str) -> int:
        state = dict.get(self.users, (partition_for(user.encode(), PARTITIONS), user))
        return UserState.from_dict(state, 50).events


def test_good_events_are_applied_and_every_record_is_settled(tmp_path: Path) -> None:
    f = Fixture(tmp_path)
    records = [f.record("u1", "i0", "a"), f.record("u2", "i1", "b"), f.record("u1", "i2", "c")]
    f.run(*records)
    assert (f.events_of("u1"), f.events_of("u2")) == (2, 1)
    assert sorted(f.port.settled) == [r.offset for r in records]
    assert {m["user_id"] for m in f.port.of("recommendations")} == {"u1", "u2"}
    assert sum(len(m["e"]) for m in f.port.of("learning")) == 3


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"key": b"\xff\xfe"}, "must equal user_id"),
        ({"key": None}, "must equal user_id"),
        ({"partition": (partition_for(b"u1", PARTITIONS) + 1) % PARTITIONS}, "murmur2_random"),
        ({"value": b"[1, 2]"}, "JSON object"),
        ({"value": b"\xff"}, "malformed JSON"),
        (
            {"value": b'{"user_id": "u1", "pad": "' + b"x" * 2_000_000 + b'"}'},
            "4096-byte limit",
        ),  # and cut to fit a Kafka record
    ],
)
def test_misrouted_or_broken_records_are_dead_lettered_and_good_ones_go_on(
    tmp_path: Path, kw: dict, reason: str
) -> None:
    f = Fixture(tmp_path)
    f.run(f.record("u1", "i0", "bad", **kw), f.record("u1", "i1", "good"))
    [dead] = f.port.of("dlq")
    assert reason in dead["reason"] and dead["source"].startswith("events[")
    assert all(len(value) <= MAX_DEAD_LETTER_BYTES for role, _, value in f.port.sent if role == "dlq")
    assert f.events_of("u1") == 1 and f.port.settled == [0, 1]


def test_unknown_items_park_uncommitted_then_apply_when_the_item_arrives(tmp_path: Path) -> None:
    f = Fixture(tmp_path)
    late = f.record("u1", "new", "late")
    f.run(late, f.record("u1", "i0", "after"))  # the later event is applied first
    assert f.events_of("u1") == 1 and f.port.settled == [1] and len(f.processor.parking) == 1
    f.run(late)  # a redelivery while parked (after a crash): still applicable, not a duplicate
    f.announce("new")
    asyncio.run(f.processor.tick())
    assert f.events_of("u1") == 2 and sorted(f.port.settled) == [0, 0, 1] and not f.port.of("dlq")


def test_parked_events_are_dead_lettered_when_patience_or_room_runs_out(tmp_path: Path) -> None:
    f = Fixture(tmp_path, max_parked=2, park_s=0.0)
    f.processor.parking.patience_s = 3600.0
    f.run(*(f.record(f"u{n}", f"ghost{n}") for n in range(3)))  # one more than there is room for
    assert ["parking full" in d["reason"] for d in f.port.of("dlq")] == [True]
    assert f.port.of("dlq")[0]["original"].find('"ghost0"') > 0  # the oldest is pushed out
    f.processor.parking.patience_s = 0.0
    asyncio.run(f.processor.tick())
    assert [d["reason"].startswith("unknown item_id 'ghost") for d in f.port.of("dlq")] == [True] * 3
    assert sorted(f.port.settled) == [0, 1, 2] and not any(
        UserState.from_dict(u, 50).deferred for u in f.users.values()
    )


def test_a_failing_batch_is_retried_then_isolated_and_only_the_poison_is_dead_lettered(tmp_path: Path) -> None:
    f = Fixture(tmp_path, fault="once:1,always")
    # "always" fails the batch twice before "once" is reached: "once" first fails alone.
    f.run(f.record("u1", "i0", "a"), f.record("u3", "i2", "always"), f.record("u2", "i1", "once"), f.record("u1", "i1"))
    assert [f.events_of(u) for u in ("u1", "u2", "u3")] == [2, 1, 0]
    [dead] = f.port.of("dlq")
    assert "InjectedFault" in dead["reason"] and "always" in dead["original"]
    assert sorted(f.port.settled) == [0, 1, 2, 3] and f.processor.stats["retries"] == 3


def test_a_failure_to_dead_letter_escapes_with_nothing_settled(tmp_path: Path) -> None:
    f = Fixture(tmp_path)
    f.port.fail_sends = 1
    with pytest.raises(ConnectionError):
        f.run(f.record("u1", "i0", value=b"{"))
    assert f.port.settled == []
