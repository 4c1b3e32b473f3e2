"""One micro-batch of ``events``: check, apply, score, publish — with nothing lost or poisoned.

For each record the processor decodes and validates the event, checks it was keyed and
partitioned as the contract says (key = the user_id's UTF-8 bytes, partition = murmur2
of the key), and dead-letters it with the reason if not, whatever went wrong. Valid
events are applied idempotently to the user's state (a table); events whose item is
not in the catalog yet are parked (`ParkingLot`) and taken back when it arrives, or
dead-lettered after ``park_s``. Every touched user is then scored at once (models are
batched) and one refreshed top-K list per user is published, plus one learning record
per source partition for every worker's item-side statistics.

Commits: a record is `Port.settle`-d only once it is applied, dead-lettered or found a
duplicate; a parked one stays unsettled, so a crash redelivers it. If applying or
scoring a batch raises, the batch is retried once, then each record alone (also with one
retry); a record that still fails is dead-lettered with the error. Only a failure to
dead-letter escapes.

The processor talks to its host through a `Port` and a mapping of user states, so it
runs without Faust (tests/unit/test_processor.py); streams/worker.py wires it to Faust.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from streamrec.settings import Settings
from streamrec.streams.arms import list_fields
from streamrec.streams.contracts import InvalidEvent, dead_letter, parse_event, recommendation_message
from streamrec.streams.kafka import PARTITIONER, partition_for
from streamrec.streams.learning import CONTEXT as LEARNING_CONTEXT
from streamrec.streams.learning import Entry, encode_batch
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_host import ModelHost
from streamrec.streams.parking import ParkingLot
from streamrec.streams.state import UserState
from streamrec.types import Event, Interaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One consumed record: its bytes, where it was read, and the consumer's handle on it."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int
    handle: Any = field(default=None, compare=False)
    # Its Kafka timestamp (s): when it was produced, where freshness is measured from.
    timestamp: float | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Port(Protocol):
    """What the processor needs from its host (Faust in the worker, a fake in tests)."""

    async def send(self, role: str, key: bytes | None, value: bytes) -> None:
        """Produce to the topic of ``role`` (``recommendations``, ``dlq``, ``learning``)."""

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged by the broker."""

    def enter(self, delivery: Delivery) -> None:
        """Make table reads and writes that follow use ``delivery``'s partition."""

    def settle(self, delivery: Delivery) -> None:
        """Done with ``delivery``: its offset may be committed."""


# User vectors are stored in the state rounded: 5 decimals keep them well inside float32
# precision and the table's values short.
VECTOR_DECIMALS = 5

Accepted = tuple[Delivery, Event]
# Called with each event about to be applied; raising simulates a bug (fault injection).
Fault = Callable[[Event], None]


class InjectedFault(RuntimeError):
    """Raised by the fault-injection hook, never by real processing."""


def fault_injector(spec: str) -> Fault | None:
    """A hook raising `InjectedFault` on marked events: ``"e1:2,e7"`` fails event ``e1``
    the first 2 times it is processed, and ``e7`` every time.

    >>> fault = fault_injector("e1:1")
    >>> e = Event("u", "i", "view", 0.0, "e1")
    >>> fault(e)
    Traceback (most recent call last):
    ...
    streamrec.streams.processor.InjectedFault: injected fault on event e1
    >>> fault(e) is None and fault_injector("") is None
    True
    """
    marks = dict(m.partition(":")[::2] for m in spec.split(",") if m)
    if not marks:
        return None
    left = Counter({event_id: int(times) if times else -1 for event_id, times in marks.items()})

    def fault(event: Event) -> None:
        if event.event_id is not None and left[event.event_id] != 0:  # unmarked ids count 0
            left[event.event_id] -= 1
            raise InjectedFault(f"injected fault on event {event.event_id}")

    return fault


@dataclass
class Touched:
    """A user changed in this micro-batch: state, newest record, newest applied event."""

    state: UserState
    delivery: Delivery
    event: Event | None = None
    produced: list[float | None] = field(default_factory=list)  # timestamps of the events applied
    acted: list[str] = field(default_factory=list)  # items of the events applied, in order


class EventProcessor:
    """Check, apply and score micro-batches; park, publish and dead-letter."""

    def __init__(
        self,
        settings: Settings,
        host: ModelHost,
        users: MutableMapping[str, Any],
        port: Port,
        fault: Fault | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.catalog = host.catalog
        self.users = users  # user_id -> UserState.to_dict()
        self.port = port
        self.fault = fault
        self.metrics = metrics or WorkerMetrics()
        self.parking: ParkingLot[Accepted] = ParkingLot(settings.max_parked, settings.park_s)
        self.stats: Counter[str] = Counter()
        self._items_cursor = 0
        # A timer re-checks parked events: batches and ticks must not interleave.
        self._lock = asyncio.Lock()

    async def handle(self, batch: Sequence[Delivery]) -> None:
        """Process one micro-batch of ``events`` records."""
        async with self._lock:
            self.host.follow()
            released = self._released()
            accepted = []
            for delivery in batch:
                checked = self.check(delivery)
                if isinstance(checked, Event):
                    accepted.append((delivery, checked))
                else:
                    await self._dead_letter(delivery, str(checked))
            self.stats["events_in"] += len(batch)
            await self._process(released + accepted)

    async def tick(self) -> None:
        """Take back parked events whose item arrived; give up those parked too long."""
        if not len(self.parking):
            return
        async with self._lock:
            self.host.follow()
            await self._process(self._released())
            await self._give_up(
                self.parking.expired(),
                f"still not in the catalog {self.settings.park_s:g} s after "
                "the event (announce it on the items topic first)",
            )

    def revoke(self, partitions: set[int]) -> None:
        """Forget parked events of partitions this worker no longer owns (unsettled: the
        new owner reads them again from the committed offset)."""
        dropped = self.parking.drop(lambda accepted: accepted[0].partition not in partitions)
        self.stats["parked_revoked"] += len(dropped)

    def check(self, delivery: Delivery) -> Event | InvalidEvent:
        """The event in ``delivery``, or why it is rejected."""
        try:
            event = parse_event(delivery.value, max_bytes=self.settings.max_event_bytes)
            return self._misrouted(delivery, event) or event
        except InvalidEvent as exc:
            return exc
        except Exception as exc:
            log.exception("unexpected error checking %s", delivery.where)
            return InvalidEvent(f"undecodable event ({type(exc).__name__}: {exc})")

    def _misrouted(self, delivery: Delivery, event: Event) -> InvalidEvent | None:
        """State is partitioned by key: a mis-keyed or mis-partitioned event would be
        applied to a user whose state lives elsewhere."""
        key = event.user_id.encode("utf-8")
        if delivery.key != key:
            return InvalidEvent(f"message key {delivery.key!r} must equal user_id {event.user_id!r} (its UTF-8 bytes)")
        expected = partition_for(key, self.settings.partitions)
        if delivery.partition != expected:
            return InvalidEvent(
                f"arrived on partition {delivery.partition} but key {key!r} hashes to partition {expected} of "
                f"{self.settings.partitions} with murmur2: produce with the Java client's default partitioner "
                f"(librdkafka partitioner={PARTITIONER})"
            )
        return None

    def _released(self) -> list[Accepted]:
        """Parked events whose item reached the catalog since the last call."""
        items, self._items_cursor = self.catalog.updates_since(self._items_cursor)
        return self.parking.release(item.item_id for item in items) if len(self.parking) else []

    async def _process(self, accepted: list[Accepted]) -> None:
        """Apply, score and publish; retry once, then record by record (see module doc)."""
        if not accepted:
            return
        try:
            parked = await self._twice(accepted)
        except Exception:
            log.exception("batch of %d failed twice; applying its events one by one", len(accepted))
            parked = await self._isolate(accepted)
        waiting = {id(a) for a in parked}
        for accepted_one in accepted:
            if id(accepted_one) not in waiting:
                self.port.settle(accepted_one[0])
        pushed_out = [self.parking.park(one[1].item_id, one) for one in parked]
        await self._give_up(
            [one for one in pushed_out if one is not None],
            f"parking full ({self.settings.max_parked} events wait for their items)",
        )

    async def _twice(self, accepted: list[Accepted]) -> list[Accepted]:
        """`_apply`, once more if it raises: a transient failure passes the second time."""
        try:
            return await self._apply(accepted)
        except Exception:
            log.exception("applying %d event(s) failed; retrying once", len(accepted))
            self.stats["retries"] += 1
            return await self._apply(accepted)

    async def _isolate(self, accepted: list[Accepted]) -> list[Accepted]:
        parked = []
        for one in accepted:
            try:
                parked += await self._twice([one])
            except Exception as exc:
                log.exception("event at %s failed twice on its own; dead-lettering it", one[0].where)
                await self._dead_letter(one[0], f"processing failed: {type(exc).__name__}: {exc}", settle=False)
        return parked

    async def _apply(self, accepted: list[Accepted]) -> list[Accepted]:
        """Apply known-item events, defer the others; returns the deferred ones."""
        touched: dict[str, Touched] = {}
        applied: dict[int, list[Entry]] = {}
        parked: list[Accepted] = []
        counts: Counter[str] = Counter()
        for one in accepted:
            delivery, event = one
            if self.fault is not None:
                self.fault(event)
            self.port.enter(delivery)  # table reads, too, go to the current event's partition
            entry = touched.get(event.user_id) or Touched(self._load(event.user_id), delivery)
            touched[event.user_id], entry.delivery = entry, delivery
            if event.item_id not in self.catalog:
                deferred = entry.state.defer(delivery.offset)
                parked += [one] if deferred else []
                counts["parked" if deferred else "duplicates"] += 1
                continue
            before = entry.state.window[-LEARNING_CONTEXT:]  # what the learning record carries
            if not entry.state.apply(event, delivery.offset):
                counts["duplicates"] += 1
                continue
            counts["applied"] += 1
            entry.event = event
            entry.produced.append(delivery.timestamp)
            entry.acted.append(event.item_id)
            interaction = Interaction(event.item_id, event.event_type, event.ts)
            applied.setdefault(delivery.partition, []).append((delivery.offset, interaction, before))
        await self._publish(touched)
        await self._share(applied)
        # Outputs first, state last: a crash in between redelivers events the state has
        # not recorded, so their lists and learning entries are sent again, never lost
        # (learning readers drop entries they already have).
        await self.port.flush()
        for user_id, entry in touched.items():
            self.port.enter(entry.delivery)
            self.users[user_id] = entry.state.to_dict()
        self.stats.update(counts)
        return parked

    async def _give_up(self, parked: list[Accepted], why: str) -> None:
        """Dead-letter parked events and clear their deferral from their users' state."""
        if not parked:
            return
        for delivery, event in parked:
            await self._dead_letter(delivery, f"unknown item_id {event.item_id!r}: {why}", settle=False)
        await self.port.flush()  # as in `_apply`: the dead letters are out before the state forgets them
        for delivery, event in parked:
            self.port.enter(delivery)
            state = self._load(event.user_id)
            state.forget(delivery.offset)
            self.users[event.user_id] = state.to_dict()
            self.port.settle(delivery)

    async def _dead_letter(self, delivery: Delivery, reason: str, settle: bool = True) -> None:
        self.stats["dead_lettered"] += 1
        self.metrics.dead_lettered(reason)
        # `dead_letter` keeps every letter within MAX_DEAD_LETTER_BYTES, far below Kafka's
        # message limit, so a huge original can never make the dead letter unsendable.
        await self.port.send("dlq", delivery.key, dead_letter(delivery.value, reason, delivery.where))
        if settle:
            self.port.settle(delivery)

    async def _share(self, applied: dict[int, list[Entry]]) -> None:
        """Publish what this batch applied, for every worker's item-side learning."""
        for partition, entries in applied.items():
            await self.port.send("learning", str(partition).encode(), encode_batch(partition, entries))

    def _load(self, user_id: str) -> UserState:
        return UserState.from_dict(self.users.get(user_id), self.settings.window)

    async def _publish(self, touched: dict[str, Touched]) -> None:
        """Score every user with a newly applied event at once and publish their lists."""
        scored = [(u, entry.event) for u, entry in touched.items() if entry.event is not None]
        users = [u for u, _ in scored]
        recommender = self.host.recommender
        contexts = [touched[u].state.context(u, self.settings.exclude_recent) for u in users]
        vectors = recommender.embed(contexts) if users else None
        if vectors is not None:
            contexts = [c.with_vector(v) for c, v in zip(contexts, vectors, strict=True)]
            # Rounded for storage once per batch (a Python `round` per element costs ~80 µs
            # per event); numpy scales then rounds, which can be one ulp off `round`'s.
            rounded = np.round(np.asarray(vectors, dtype=np.float64), VECTOR_DECIMALS).tolist()
            for user_id, vector in zip(users, rounded, strict=True):
                touched[user_id].state.vector = vector
        ranked = recommender.recommend(contexts, self.settings.k) if users else []
        reasons = recommender.explain_all(contexts, ranked) if users else []
        now = time.time()
        for (user_id, event), items, why in zip(scored, ranked, reasons, strict=True):
            entry = touched[user_id]
            model, experiment = list_fields(recommender, user_id, entry.state, entry.acted, items, self.metrics)
            message = recommendation_message(user_id, items, event, model, entry.state.events, now, why, experiment)
            await self.port.send("recommendations", user_id.encode(), message)
            self.metrics.published(touched[user_id].produced, now)
        self.stats["lists_out"] += len(users)
