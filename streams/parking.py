"""Events waiting for their item to reach the catalog, bounded in number and in time.

An item announced just before its first event may still be in flight to this worker's
catalog reader. Instead of sleeping in the stream (which would delay every event behind
it) the worker parks such an event, goes on with the rest, and takes it back when the
item arrives (`release`); one parked longer than ``patience_s``, or pushed out because
more than ``capacity`` wait, is given up (`expired`, the return value of `park`).

>>> lot = ParkingLot(capacity=2, patience_s=10.0, clock=iter([0.0, 1.0, 2.0, 12.5, 13.0]).__next__)
>>> lot.park("a", "e1"), lot.park("b", "e2"), lot.park("b", "e3")  # full: e1 is pushed out
(None, None, 'e1')
>>> lot.release(["b"]), len(lot)
(['e2', 'e3'], 0)
>>> lot.park("c", "e4"), lot.expired()  # parked at 12.5: not yet expired
(None, [])
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from itertools import count
from typing import Generic, TypeVar

T = TypeVar("T")


class ParkingLot(Generic[T]):
    """Values parked under an item id, oldest first; ``clock`` is monotonic seconds."""

    def __init__(self, capacity: int, patience_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.patience_s = patience_s
        self.clock = clock
        self._parked: OrderedDict[int, tuple[str, float, T]] = OrderedDict()  # ticket -> (item, since, value)
        self._by_item: dict[str, dict[int, None]] = {}  # item -> its tickets (an ordered set)
        self._tickets = count()

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, item_id: str, value: T) -> T | None:
        """Park ``value`` until ``item_id`` is known; returns the oldest value if that
        overflowed the lot."""
        ticket = next(self._tickets)
        self._parked[ticket] = (item_id, self.clock(), value)
        self._by_item.setdefault(item_id, {})[ticket] = None
        if len(self._parked) > self.capacity:
            return self._take(next(iter(self._parked)))
        return None

    def release(self, item_ids: Iterable[str]) -> list[T]:
        """The values waiting for any of ``item_ids`` (now known), in parking order."""
        tickets = sorted(t for item in item_ids for t in self._by_item.get(item, ()))
        return [self._take(t) for t in tickets]

    def expired(self) -> list[T]:
        """The values parked for longer than ``patience_s``, oldest first."""
        deadline = self.clock() - self.patience_s
        out = []
        while self._parked:
            ticket, (_, since, _) = next(iter(self._parked.items()))
            if since > deadline:
                break
            out.append(self._take(ticket))
        return out

    def drop(self, keep: Callable[[T], bool]) -> list[T]:
        """Remove and return every value ``keep`` rejects (e.g. of revoked partitions)."""
        return [self._take(t) for t, (_, _, value) in list(self._parked.items()) if not keep(value)]

    def _take(self, ticket: int) -> T:
        item_id, _, value = self._parked.pop(ticket)
        waiting = self._by_item[item_id]
        del waiting[ticket]
        if not waiting:
            del self._by_item[item_id]
        return value
