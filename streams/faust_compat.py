"""Where streamrec reaches into Faust's internals, all in one place.

Each shim depends on how the pinned faust-streaming minor version (pyproject) works
inside; tests/unit/test_faust_compat.py checks those internals still have the shape
patched here, so an upgrade that changes them fails a fast test, not a running worker.

- `use_fetch_wait`: Faust hard-codes the consumer's ``fetch_max_wait_ms=1500``.
- `set_current_event`: ``take_events`` yields batches outside Faust's per-event
  context, which is where table writes take their partition from.
- `hold` / `settle`: ``take_events`` acks every event of a batch once the loop body
  returns *or raises*, and Faust commits every contiguously acked offset. Holding an
  extra reference keeps an event uncommitted until streamrec is done with it.
- `current`: a parked or in-flight event may be settled after a rebalance started a new
  consumer generation; Faust's stream skips stale messages, and `settle` does not ack them.
- `consumer_lags`: Faust keeps the last offset it read per partition in a private map.
- `store_databases`: a ``rocksdb://`` table's store keeps its open databases (one per
  partition held) in a private map.
- `guard_fetch_holes`: Faust asks aiokafka for the records of its *live* set of active
  partitions, which table recovery empties for a moment, and aiokafka reads an empty
  set as "all partitions"; Faust then drops the records of partitions not active (also
  when flow stops or the generation changes mid-batch) after aiokafka has moved past
  them. A partition without a committed offset is never sought back, so its records
  are silently skipped, and the next one delivered makes Faust commit past the hole
  (it counts the hole as a gap). Seen as the restarted worker "stalling" in
  tests/integration/test_crash_recovery.py (findings-reliability §2).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from faust.streams import _current_event
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT, Message

log = logging.getLogger(__name__)

# The literal Faust passes to aiokafka; freshness would be ~1 s with it.
FAUST_FETCH_WAIT_MS = 1500


def use_fetch_wait(ms: int) -> None:
    """Override Faust's hard-coded ``fetch_max_wait_ms=1500`` with ``ms``.

    Faust builds its aiokafka consumer with a literal 1500 ms; the consumer reads the
    value from ``_fetch_max_wait_ms`` when it starts, so setting it after construction
    is enough.
    """
    original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "streamrec_fetch_wait", None) == ms:
        return
    original = getattr(original, "streamrec_original", original)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms
        return consumer

    create.streamrec_fetch_wait = ms  # type: ignore[attr-defined]
    create.streamrec_original = original  # type: ignore[attr-defined]
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def set_current_event(event: EventT) -> None:
    """Make ``event`` Faust's current event: table writes take their partition from it."""
    _current_event.set(weakref.ref(event))


def hold(event: EventT) -> None:
    """Keep ``event`` from being committed by the ack ``take_events`` gives it."""
    event.message.incref()


def settle(event: EventT) -> None:
    """Release a `hold`: the offset may now be committed (once all before it are).

    Not for an event read before the consumer's current generation (a rebalance came
    between read and settle): the new generation reads it again from the committed
    offset, and Faust commits the first run of acked offsets it holds, so a stale ack
    could commit past events this generation has not processed yet.
    """
    if current(event):
        event.ack()


def current(event: EventT) -> bool:
    """Whether ``event`` was read in the consumer's current generation (Faust's own
    stream skips the others, see ``Stream._py_aiter``)."""
    return event.message.generation_id == event.app.consumer_generation_id


def consumer_lags(app: Any, topic: str) -> dict[int, int]:
    """Records not read yet per partition of ``topic`` assigned to ``app``: the highwater
    aiokafka last fetched minus (Faust's last read offset + 1). Called from the metrics
    thread, so a rebalance under way gives an empty answer rather than an error."""
    try:
        consumer = app.consumer
        read = consumer._read_offset
        highwaters = {tp: consumer.highwater(tp) for tp in consumer.assignment() if tp.topic == topic}
    except Exception:
        return {}
    return {tp.partition: max(0, hw - _next(read.get(tp))) for tp, hw in highwaters.items() if hw is not None}


def store_databases(table: Any) -> list[Any]:
    """The open RocksDB databases (`rocksdict.Rdict`) behind ``table``, one per partition
    this worker holds (none before the first assignment, or for another store)."""
    return list(getattr(table.data, "_dbs", {}).values())


def _next(last_read: int | None) -> int:
    """The offset after ``last_read`` (nothing read yet: count from the start)."""
    return 0 if last_read is None else last_read + 1


def guard_fetch_holes() -> None:
    """Patch Faust so that no record aiokafka hands over is skipped (see module doc):
    fetch with a snapshot of the active partitions (none: fetch nothing), and seek each
    partition back to the first record `Consumer.getmany` fetched but did not deliver."""
    thread = faust_aiokafka.AIOKafkaConsumerThread
    if not hasattr(thread._fetch_records, "streamrec_original"):
        thread._fetch_records = snapshot_fetch(thread._fetch_records)  # type: ignore[method-assign,assignment]
    consumer = faust_consumer.Consumer
    if not hasattr(consumer.getmany, "streamrec_original"):
        consumer._wait_next_records = remember_fetched(consumer._wait_next_records)  # type: ignore[method-assign,assignment]
        consumer.getmany = seek_back_undelivered(consumer.getmany)  # type: ignore[method-assign]


def snapshot_fetch(fetch: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``_fetch_records`` given a frozen copy of the partitions, and nothing to fetch for none."""

    async def _fetch_records(self: Any, consumer: Any, active_partitions: set[TP], **kwargs: Any) -> Any:
        snapshot = frozenset(active_partitions)
        return await fetch(self, consumer, snapshot, **kwargs) if snapshot else {}

    _fetch_records.streamrec_original = fetch  # type: ignore[attr-defined]
    return _fetch_records


def remember_fetched(wait: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``_wait_next_records`` keeping what it returned for `seek_back_undelivered`."""

    async def _wait_next_records(self: Any, timeout: float) -> Any:
        records, active = await wait(self, timeout)
        self.streamrec_fetched = records
        return records, active

    _wait_next_records.streamrec_original = wait  # type: ignore[attr-defined]
    return _wait_next_records


def seek_back_undelivered(getmany: Callable[..., AsyncIterator[tuple[TP, Message]]]) -> Callable[..., Any]:
    """``getmany`` that, once Faust's has delivered what it will, seeks every assigned
    partition back to the first fetched record it did not deliver (never forward: Faust
    may itself have sought further back, to the committed offset)."""

    async def guarded(self: Any, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        self.streamrec_fetched = None
        delivered: dict[TP, int] = {}
        async for tp, message in getmany(self, timeout):
            delivered[tp] = message.offset
            yield tp, message
        fetched, self.streamrec_fetched = self.streamrec_fetched or {}, None
        assigned = self.assignment()
        for tp, records in fetched.items():
            skipped = [r.offset for r in records if r.offset > delivered.get(tp, -1)]
            if skipped and tp in assigned and (await self.position(tp) or 0) > skipped[0]:
                log.info("re-reading %s from %d: %d fetched records were not delivered", tp, skipped[0], len(skipped))
                await self.seek(tp, skipped[0])

    guarded.streamrec_original = getmany  # type: ignore[attr-defined]
    return guarded
