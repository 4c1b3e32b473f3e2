"""Per-user state kept in the worker's RocksDB-backed Faust table.

Applying an event is idempotent: a redelivered event (after a crash, Kafka delivers
at least once) has an offset at or below the last one applied for the user, and a
producer-side duplicate repeats a recent ``event_id``; both are skipped. All of a
user's events live on one partition (key = user_id), so one offset per user suffices.

An event put aside (its item is not in the catalog yet) is `defer`-red: later events
may be applied before it, and its offset stays applicable until it is applied or
given up (`forget`), so a redelivery cannot mistake it for a duplicate, nor apply it twice.

>>> s = UserState()
>>> e = Event("u1", "i1", "purchase", 10.0, "e1")
>>> s.apply(e, offset=0), s.apply(e, offset=0), s.apply(e, offset=1)
(True, False, False)
>>> s.events, s.purchased, [w.item_id for w in s.window]
(1, ['i1'], ['i1'])
>>> s.defer(5), s.apply(Event("u1", "i2", "view", 11.0), offset=6), s.defer(5)  # 5 waits; 6 goes first
(True, True, True)
>>> s.apply(Event("u1", "i3", "view", 9.0), offset=5), s.apply(Event("u1", "i3", "view", 9.0), offset=5)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamrec.types import EVENT_TYPE_INDEX, EVENT_TYPES, Event, Interaction, UserContext

# Purchases are excluded from recommendations for good; keep a bounded memory of them.
MAX_PURCHASED = 500
# Producer-side duplicates arrive close together: remembering this many ids catches them.
RECENT_IDS = 64
# Deferred offsets kept per user: a worker parks far fewer (its ``max_parked`` is global);
# past this the oldest is forgotten, and its event counted as applied if redelivered.
MAX_DEFERRED = 256


@dataclass
class UserState:
    """Recent-event window, counters, exclusions and the idempotency watermark."""

    window_size: int = 50
    window: list[Interaction] = field(default_factory=list)
    counts: list[int] = field(default_factory=lambda: [0] * len(EVENT_TYPES))
    purchased: list[str] = field(default_factory=list)
    recent_ids: list[str] = field(default_factory=list)
    last_offset: int = -1
    vector: list[float] | None = None
    deferred: list[int] = field(default_factory=list)
    # The top-K of the list last published for the user, kept while an experiment runs:
    # the user's next events are scored against it (streams/arms.py).
    shown: list[str] | None = None

    @property
    def events(self) -> int:
        """How many distinct events have been applied to this user."""
        return sum(self.counts)

    def apply(self, event: Event, offset: int) -> bool:
        """Apply ``event`` read at ``offset``; False if it was already applied."""
        if offset in self.deferred:
            self.forget(offset)
        elif offset <= self.last_offset:
            return False
        self.last_offset = max(self.last_offset, offset)
        if event.event_id is not None:
            if event.event_id in self.recent_ids:
                return False
            _push(self.recent_ids, event.event_id, RECENT_IDS)
        _push(self.window, Interaction(event.item_id, event.event_type, event.ts), self.window_size)
        self.counts[EVENT_TYPE_INDEX[event.event_type]] += 1
        if event.event_type == "purchase" and event.item_id not in self.purchased:
            _push(self.purchased, event.item_id, MAX_PURCHASED)
        return True

    def defer(self, offset: int) -> bool:
        """Put the event at ``offset`` aside, to `apply` later; False if it was applied."""
        if offset in self.deferred:
            return True
        if offset <= self.last_offset:
            return False
        self.last_offset = offset
        self.deferred = [*self.deferred[-(MAX_DEFERRED - 1) :], offset]
        return True

    def forget(self, offset: int) -> None:
        """Give up a deferred event: it will not be applied."""
        self.deferred = [o for o in self.deferred if o != offset]

    def context(self, user_id: str, exclude_recent: int = 0) -> UserContext:
        """What recommenders see: the window; purchases and the last ``exclude_recent``
        window items excluded."""
        recent = [i.item_id for i in self.window[-exclude_recent:]] if exclude_recent else []
        return UserContext(user_id, tuple(self.window), frozenset(self.purchased).union(recent))

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-ready form (the table's value; short keys keep RocksDB small)."""
        return {
            "w": [[i.item_id, EVENT_TYPE_INDEX[i.event_type], i.ts] for i in self.window],
            "c": self.counts,
            "p": self.purchased,
            "r": self.recent_ids,
            "o": self.last_offset,
            "v": self.vector,
            **({"d": self.deferred} if self.deferred else {}),
            **({"s": self.shown} if self.shown is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, window_size: int) -> UserState:
        if not d:
            return cls(window_size)
        window = [Interaction(item, EVENT_TYPES[t], ts) for item, t, ts in d["w"]]
        # Copies: `apply` changes them in place, and ``d`` may be what the table holds.
        shown = d.get("s")
        return cls(
            window_size, window, [*d["c"]], [*d["p"]], [*d["r"]], d["o"], d["v"], [*d.get("d", [])],
            None if shown is None else [*shown],
        )  # fmt: skip


def _push(bounded: list[Any], value: Any, size: int) -> None:
    """Append ``value`` in place, keeping the newest ``size`` (one event's work: no copy).

    >>> xs = [1, 2, 3]; _push(xs, 4, 3); xs
    [2, 3, 4]
    """
    bounded.append(value)
    del bounded[:-size]
