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
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT

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
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create


def set_current_event(event: EventT) -> None:
    """Make ``event`` Faust's current event: table writes take their partition from it."""
    _current_event.set(weakref.ref(event))


def hold(event: EventT) -> None:
    """Keep ``event`` from being committed by the ack ``take_events`` gives it."""
    event.message.incref()


def settle(event: EventT) -> None:
    """Release a `hold`: the offset may now be committed (once all before it are)."""
    event.ack()
