"""Replay gating: the order a backtest produces a time-ordered log in.

A user's next event is produced only once the list that includes their previous one
was published (`Gate`), so each scored event is ranked against the list the user saw
right before it, while other users' events keep flowing. `split` cuts the log at
``train_until`` (warm-up / scored) and numbers each user's events (ordinals);
`reordering` measures how far the gate strayed from log order across users; `pausing`
stops the release every N events (a backtest's trainer rounds run in the pause).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from streamrec.streams.lists import ListBook
from streamrec.types import Event

T = TypeVar("T")

# Default events awaiting their lists at once: each gated event costs one round trip
# (~25-50 ms here), so throughput <= in_flight / round trip; 1 = lockstep (exact, slow).
IN_FLIGHT = 64
# Default cap on events read ahead and waiting to be produced. 86% of ml-100k's
# consecutive events are by the same user, so a small lookahead finds few other users
# to run while one user's burst waits: simulated on ml-100k's scored 20% at a 25 ms
# round trip, 256 -> 99 s, 1024 -> 35 s, 2048 -> 22 s. The price is reordering across
# users (never within a user), measured and reported as reorder_*.
LOOKAHEAD = 2048
# A gated event whose list never comes (dead-lettered, worker down) is released after this.
STALL_TIMEOUT_S = 30.0


@dataclass
class Split:
    """The log cut at ``train_until``: training counts, scored events with user ordinals."""

    warmup: int = 0
    scored: list[tuple[Event, int]] = field(default_factory=list)
    train_counts: Counter[str] = field(default_factory=Counter)
    # Each user's event count at the end of warm-up: what their last warm-up list must show.
    warmup_ordinals: dict[str, int] = field(default_factory=dict)


class Gate:
    """Per-user gated ordering of a time-ordered stream.

    Yields events in time order, except that an event whose user still awaits the list
    of their previous event is held back (with that user's later events) while other
    users' events go ahead, at most ``in_flight`` awaiting lists and at most
    ``lookahead`` events buffered. Held events wait in per-user queues; users free to go
    sit in a heap keyed by the log position of their next event (O(log n) per event).
    """

    def __init__(
        self, book: ListBook, in_flight: int, lookahead: int = LOOKAHEAD, stall_timeout_s: float = STALL_TIMEOUT_S
    ) -> None:
        self.book = book
        self.in_flight = max(1, in_flight)
        self.lookahead = max(1, lookahead)
        self.stall_timeout_s = stall_timeout_s
        self.awaiting: dict[str, tuple[int, float]] = {}
        self.queues: dict[str, deque[tuple[int, Event, int]]] = {}
        self.ready: list[tuple[int, str]] = []
        self.buffered = 0
        self.stalled = 0

    def order(self, events: Iterable[tuple[Event, int]]) -> Iterator[Event]:
        source = enumerate(events)
        exhausted = False
        while self.buffered or not exhausted:
            with self.book.cond:
                self._settle()
                if not self.ready and not exhausted and self.buffered < self.lookahead:
                    nxt = next(source, None)
                    exhausted = nxt is None
                    if nxt is not None:
                        self._add(nxt[0], *nxt[1])
                    continue
                if not self.ready or len(self.awaiting) >= self.in_flight:
                    self.book.cond.wait(0.05)
                    continue
                event, ordinal = self._pop()
                self.awaiting[event.user_id] = (ordinal, time.monotonic())
            yield event

    def _add(self, position: int, event: Event, ordinal: int) -> None:
        queue = self.queues.setdefault(event.user_id, deque())
        queue.append((position, event, ordinal))
        self.buffered += 1
        if len(queue) == 1 and event.user_id not in self.awaiting:
            heapq.heappush(self.ready, (position, event.user_id))

    def _pop(self) -> tuple[Event, int]:
        _, user = heapq.heappop(self.ready)
        queue = self.queues[user]
        _, event, ordinal = queue.popleft()
        self.buffered -= 1
        if not queue:
            del self.queues[user]
        return event, ordinal

    def _settle(self) -> None:
        """Free users whose awaited list arrived (or stalled); their next event becomes ready."""
        now = time.monotonic()
        for user, (ordinal, since) in list(self.awaiting.items()):
            arrived = self.book.user_events(user) >= ordinal
            if arrived or now - since > self.stall_timeout_s:
                self.stalled += not arrived
                del self.awaiting[user]
                if user in self.queues:
                    heapq.heappush(self.ready, (self.queues[user][0][0], user))


def pausing(events: Iterable[T], every: int, pause: Callable[[int], None]) -> Iterator[T]:
    """Yield ``events``, calling ``pause(n)`` after the ``n``-th for every multiple ``n`` of ``every``.

    A generator resumes only when its consumer asks for the next event, so ``pause`` runs
    once the ``n``-th was produced and before any later one is released.

    >>> list(pausing("abcde", 2, lambda n: print("pause after", n)))
    pause after 2
    pause after 4
    ['a', 'b', 'c', 'd', 'e']
    """
    for n, event in enumerate(events, 1):
        yield event
        if n % every == 0:
            pause(n)


def split(events: Iterable[Event], train_until: float) -> tuple[Iterator[tuple[Event, int]], Split]:
    """Stream the warm-up part (ts < train_until) with user ordinals while filling a
    `Split` with the rest.

    Events get ids ``bt-<n>``; the log must be in time order (checked).
    """
    result = Split()
    ordinals: Counter[str] = Counter()

    def warmup() -> Iterator[tuple[Event, int]]:
        last_ts = float("-inf")
        for n, event in enumerate(events):
            if event.ts < last_ts:
                raise ValueError(f"events must be in time order: event {n} has ts {event.ts} < {last_ts}")
            last_ts = event.ts
            event = replace(event, event_id=f"bt-{n}")
            ordinals[event.user_id] += 1
            if event.ts < train_until:
                result.warmup += 1
                result.train_counts[event.item_id] += 1
                result.warmup_ordinals[event.user_id] = ordinals[event.user_id]
                yield event, ordinals[event.user_id]
            else:
                result.scored.append((event, ordinals[event.user_id]))

    return warmup(), result


def reordering(log_index: Sequence[int], ts: Sequence[float]) -> dict[str, float]:
    """How far ahead of each event the replay had already gone when it was produced.

    For the ``n``-th produced event: ``max(log_index[:n]) - log_index[n]`` events and
    ``max(ts[:n]) - ts[n]`` seconds of event time (0 for a replay in log order).

    >>> reordering([0, 2, 1, 3], [0.0, 20.0, 10.0, 30.0])
    {'reorder_max_events': 1, 'reorder_mean_events': 0.25, 'reorder_max_s': 10.0, 'reorder_p99_s': 9.7}
    """
    if not log_index:
        return {}
    ahead_n = np.maximum.accumulate(np.asarray(log_index)) - np.asarray(log_index)
    ahead_s = np.maximum.accumulate(np.asarray(ts)) - np.asarray(ts)
    return {
        "reorder_max_events": int(ahead_n.max()),
        "reorder_mean_events": round(float(ahead_n.mean()), 3),
        "reorder_max_s": float(ahead_s.max()),
        "reorder_p99_s": round(float(np.percentile(ahead_s, 99)), 3),
    }
