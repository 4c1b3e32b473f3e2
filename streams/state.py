"""Per-user state kept in the worker's RocksDB-backed Faust table.

Applying an event is idempotent: a redelivered event (after a crash, Kafka delivers
at least once) has an offset at or below the last one applied for the user, and a
producer-side duplicate repeats a recent ``event_id``; both are skipped. All of a
user's events live on one partition (key = user_id), so one offset per user suffices.

>>> s = UserState()
>>> e = Event("u1", "i1", "purchase", 10.0, "e1")
>>> s.apply(e, offset=0), s.apply(e, offset=0), s.apply(e, offset=1)
(True, False, False)
>>> s.events, s.purchased, [w.item_id for w in s.window]
(1, ['i1'], ['i1'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Any

from streamrec.types import Interaction, UserContext
from streamrec.types import EVENT_TYPES, EVENT_TYPE_INDEX, Event

# Purchases are excluded from recommendations for good; keep a bounded memory of them.
MAX_PURCHASED = 500
# Producer-side duplicates arrive close together: remembering this many ids catches them.
RECENT_IDS = 64


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

    @property
    def events(self) -> int:
        """How many distinct events have been applied to this user."""
        return sum(self.counts)

    def apply(self, event: Event, offset: int) -> bool:
        """Apply ``event`` read at ``offset``; False if it was already applied."""
        if offset <= self.last_offset:
            return False
        self.last_offset = offset
        if event.event_id is not None:
            if event.event_id in self.recent_ids:
                return False
            self.recent_ids = [*self.recent_ids[-(RECENT_IDS - 1) :], event.event_id]
        self.window = [*self.window[-(self.window_size - 1) :], Interaction(event.item_id, event.event_type, event.ts)]
        self.counts[EVENT_TYPE_INDEX[event.event_type]] += 1
        if event.event_type == "purchase" and event.item_id not in self.purchased:
            self.purchased = [*self.purchased[-(MAX_PURCHASED - 1) :], event.item_id]
        return True

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
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, window_size: int) -> UserState:
        if not d:
            return cls(window_size)
        window = [Interaction(item, EVENT_TYPES[t], ts) for item, t, ts in d["w"]]
        return cls(window_size, window, d["c"], d["p"], d["r"], d["o"], d["v"])
