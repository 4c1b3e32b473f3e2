"""The Faust internals streams/faust_compat.py patches still have the shape it expects.

A faust-streaming upgrade that changes one of them fails here, not in a running worker;
pyproject pins the minor version these checks were written against.
"""

from __future__ import annotations

import asyncio
import inspect
from contextvars import ContextVar
from pathlib import Path
from types import SimpleNamespace

import aiokafka
import pytest
from aiokafka.consumer.fetcher import Fetcher
from faust import streams
from faust.events import Event
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streamrec.streams import faust_compat


def test_faust_still_hard_codes_the_fetch_wait_the_shim_overrides() -> None:
    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    create = getattr(create, "streamrec_original", create)
    assert list(inspect.signature(create).parameters) == ["self", "transport"]
    assert f"fetch_max_wait_ms={faust_compat.FAUST_FETCH_WAIT_MS}" in inspect.getsource(create)


def test_aiokafka_reads_the_fetch_wait_from_the_attribute_the_shim_sets() -> None:
    async def construct() -> aiokafka.AIOKafkaConsumer:
        return aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=1500)

    consumer = asyncio.run(construct())
    assert consumer._fetch_max_wait_ms == 1500
    assert "self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.start)


def test_use_fetch_wait_wraps_the_consumer_factory_once() -> None:
    faust_compat.use_fetch_wait(10)
    first = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    faust_compat.use_fetch_wait(20)
    second = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert second.streamrec_fetch_wait == 20 and second.streamrec_original is first.streamrec_original


def test_current_event_is_a_context_variable_of_weak_references() -> None:
    assert isinstance(streams._current_event, ContextVar)
    assert "eventref()" in inspect.getsource(streams.current_event)


def test_take_events_acks_each_event_of_a_batch_once_after_the_loop_body() -> None:
    source = inspect.getsource(streams.Stream.take_events)
    assert "self.enable_acks = False" in source
    finally_block = source[source.index("yield list(events)") :]
    assert "for event in events:\n                            await self.ack(event)" in finally_block


def streamed_event(acked: list[int]) -> Event:
    """An event at offset 7 of consumer generation 3, as the stream hands it over; the
    consumer records the offsets it is told are done in ``acked``."""

    class Consumer:
        def ack(self, message: ConsumerMessage) -> bool:
            acked.append(message.offset)
            return True

    message = ConsumerMessage("events", 0, 7, 0.0, 0, None, b"k", b"v", None, generation_id=3)
    message.incref()  # the one reference the stream takes
    app = type("App", (), {"consumer": Consumer(), "consumer_generation_id": 3})()
    return Event(app, b"k", b"v", None, message)


@pytest.mark.parametrize("holds", [0, 1])
def test_a_held_message_is_acked_only_when_settled(holds: int) -> None:
    acked: list[int] = []
    event = streamed_event(acked)
    for _ in range(holds):
        faust_compat.hold(event)
    event.ack()  # what take_events does after the loop body
    assert acked == ([] if holds else [7])
    if holds:
        faust_compat.settle(event)
        assert acked == [7]


def test_an_event_of_an_earlier_generation_is_not_acked() -> None:
    acked: list[int] = []
    event = streamed_event(acked)
    faust_compat.hold(event)
    event.ack()
    assert faust_compat.current(event)
    event.app.consumer_generation_id = 4  # a rebalance between read and settle
    assert not faust_compat.current(event)
    faust_compat.settle(event)
    assert acked == []


def test_faust_streams_skip_messages_of_an_earlier_generation_too() -> None:
    source = inspect.getsource(streams.Stream._py_aiter)
    assert "message.generation_id != self.app.consumer_generation_id" in source


def test_aiokafka_reads_an_empty_partition_set_as_all_and_faust_passes_its_live_set() -> None:
    assert "if partitions and tp not in partitions" in inspect.getsource(Fetcher.fetched_records)
    fetch = faust_aiokafka.AIOKafkaConsumerThread._fetch_records
    fetch = getattr(fetch, "streamrec_original", fetch)
    assert list(inspect.signature(fetch).parameters) == [
        "self",
        "consumer",
        "active_partitions",
        "timeout",
        "max_records",
    ]
    assert "fetched_records(\n                    active_partitions," in inspect.getsource(fetch)


def test_faust_counts_a_skipped_range_as_a_gap_it_may_commit_past() -> None:
    assert "await self._add_gap(tp, r_offset + 1, offset)" in inspect.getsource(Consumer._drain_messages)


def test_fetch_snapshot_fetches_nothing_for_no_partitions() -> None:
    seen = []

    async def fetch(self: object, consumer: object, partitions: frozenset, **kwargs: object) -> dict:
        seen.append(partitions)
        return {"fetched": True}

    guarded = faust_compat.snapshot_fetch(fetch)
    live = {TP("events", 0)}
    assert asyncio.run(guarded(None, None, set())) == {} and not seen
    assert asyncio.run(guarded(None, None, live, timeout=1.0)) == {"fetched": True}
    assert seen == [frozenset(live)] and seen[0] is not live


class FetchingConsumer:
    """Enough of a Faust consumer for Faust's own ``getmany`` to run on."""

    getmany = faust_compat.seek_back_undelivered(getattr(Consumer.getmany, "streamrec_original", Consumer.getmany))
    should_stop = False
    flow_active = True

    def __init__(self, records: dict[TP, list[int]], active: set[TP], stop_flow_after: int | None = None) -> None:
        self.records = {tp: [SimpleNamespace(offset=o) for o in offsets] for tp, offsets in records.items()}
        self.active = active
        self.stop_flow_after = stop_flow_after
        self.app = SimpleNamespace(
            consumer_generation_id=1, monitor=SimpleNamespace(track_tp_end_offset=lambda tp, hw: None)
        )
        self.scheduler = DefaultSchedulingStrategy()
        self._buffered_partitions: set[TP] = set()
        self.positions = {tp: offsets[-1] + 1 for tp, offsets in records.items()}
        self.delivered: list[tuple[int, int]] = []

    async def _wait_next_records(self, timeout: float) -> tuple[dict, set[TP]]:
        return await faust_compat.remember_fetched(lambda _self, _t: asyncio.sleep(0, (self.records, self.active)))(
            self, timeout
        )

    def highwater(self, tp: TP) -> int:
        return 0

    def _to_message(self, tp: TP, record: SimpleNamespace) -> SimpleNamespace:
        if self.stop_flow_after is not None and len(self.delivered) + 1 >= self.stop_flow_after:
            self.flow_active = False
        return record

    def assignment(self) -> set[TP]:
        return set(self.records)

    async def position(self, tp: TP) -> int:
        return self.positions[tp]

    async def seek(self, tp: TP, offset: int) -> None:
        self.positions[tp] = offset

    def fetch(self) -> dict[TP, int]:
        async def run() -> None:
            async for tp, message in self.getmany(1.0):
                self.delivered.append((tp.partition, message.offset))

        asyncio.run(run())
        return self.positions


def test_records_faust_drops_are_fetched_again() -> None:
    a, b = TP("events", 0), TP("events", 1)
    inactive = FetchingConsumer({a: [5, 6, 7], b: [3, 4]}, active={a})  # b still recovering
    assert inactive.fetch() == {a: 8, b: 3} and inactive.delivered == [(0, 5), (0, 6), (0, 7)]
    stopped = FetchingConsumer({a: [5, 6, 7], b: [3, 4]}, active={a, b}, stop_flow_after=2)  # a rebalance begins
    assert stopped.fetch() == {a: 6, b: 4} and stopped.delivered == [(0, 5), (1, 3)]


def test_a_rocksdb_tables_open_databases_are_where_store_databases_reads_them(tmp_path: Path) -> None:
    import faust

    app = faust.App("compat", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("users", partitions=2)
    assert faust_compat.store_databases(table) == []
    db = table.data._db_for_partition(1)
    assert faust_compat.store_databases(table) == [db]
    db.close()
