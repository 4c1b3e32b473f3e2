"""Natural batching: the processor takes what has arrived as soon as it is free.

Faust's ``take_events(max, within)`` stops reading while its batch is processed and then
collects for ``within`` seconds. Under a backlog a batch is what one window reads (38
events on average here, `bench/bench_pipeline.py` with the worker's metrics), so every
per-batch cost (the broker round trip that must precede the state write, one scoring
call) is paid every few dozen events; at low rates each event waits out the window.

Here the stream is read without pause into a bounded buffer (``capacity``: the reader
waits when it is full, so memory is bounded and the broker keeps the backlog), and the
processor takes everything buffered, up to ``max_size``, whenever it finishes a batch.
Only when it was idle, waiting for the first event, does it linger up to ``linger_s`` for
more (as a Kafka producer's ``linger.ms``): a user's burst of events then shares one list
and one broker round trip, where one batch per event would cost a round trip each. Under
load a batch is taken at once, full. A batch is FIFO, so one user's events keep their order.

>>> import asyncio
>>> async def demo() -> list[list[int]]:
...     batches = Batches[int](max_size=3, capacity=5)
...     for n in range(5):
...         await batches.put(n)
...     return [await batches.take(), await batches.take()]
>>> asyncio.run(demo())
[[0, 1, 2], [3, 4]]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batches(Generic[T]):
    """A bounded FIFO between one reader (`put`) and one processor (`take`)."""

    def __init__(self, max_size: int, capacity: int, linger_s: float = 0.0) -> None:
        if not 1 <= max_size <= capacity:
            raise ValueError(f"need 1 <= max_size ({max_size}) <= capacity ({capacity})")
        self.max_size, self.capacity, self.linger_s = max_size, capacity, linger_s
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()  # set while something is buffered
        self._room = asyncio.Event()  # set while below capacity
        self._full = asyncio.Event()  # set once a whole batch is buffered

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T) -> None:
        """Buffer ``item``; waits while the buffer is full."""
        while len(self._items) >= self.capacity:
            self._room.clear()
            await self._room.wait()
        self._items.append(item)
        self._ready.set()
        if len(self._items) >= self.max_size:
            self._full.set()

    async def take(self) -> list[T]:
        """The oldest buffered items, at least one and at most ``max_size``; waits for one
        (and, if it had to, up to ``linger_s`` more for a full batch)."""
        idle = not self._items
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        if idle and self.linger_s > 0 and len(self._items) < self.max_size:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.linger_s)
        batch = [self._items.popleft() for _ in range(min(self.max_size, len(self._items)))]
        self._room.set()
        return batch

    def drop(self, keep: Callable[[T], bool]) -> list[T]:
        """Remove the buffered items ``keep`` rejects (e.g. of revoked partitions); returns them."""
        kept: list[T] = []
        dropped: list[T] = []
        for item in self._items:
            (kept if keep(item) else dropped).append(item)
        self._items = deque(kept)
        self._room.set()
        return dropped
