"""Natural batching (streams/batching.py): bounded, FIFO, never waits for a batch to fill."""

from __future__ import annotations

import asyncio

import pytest

from streamrec.streams.batching import Batches


def test_a_batch_is_what_has_arrived_up_to_the_maximum_in_order() -> None:
    async def run() -> list[list[int]]:
        batches = Batches[int](max_size=4, capacity=8)
        for n in range(6):
            await batches.put(n)
        first = await batches.take()
        await batches.put(6)
        return [first, await batches.take()]

    assert asyncio.run(run()) == [[0, 1, 2, 3], [4, 5, 6]]


def test_take_returns_one_event_at_once_rather_than_waiting_for_more() -> None:
    async def run() -> list[int]:
        batches = Batches[int](max_size=256, capacity=512)
        taker = asyncio.create_task(batches.take())
        await asyncio.sleep(0)
        await batches.put(1)
        return await asyncio.wait_for(taker, timeout=5)

    assert asyncio.run(run()) == [1]


def test_the_reader_waits_while_the_buffer_is_full() -> None:
    async def run() -> tuple[bool, bool, list[int]]:
        batches = Batches[int](max_size=2, capacity=2)
        await batches.put(0)
        await batches.put(1)
        blocked = asyncio.create_task(batches.put(2))
        await asyncio.sleep(0.01)
        waited = not blocked.done()
        taken = await batches.take()
        await asyncio.wait_for(blocked, timeout=5)
        return waited, len(batches) == 1, taken

    assert asyncio.run(run()) == (True, True, [0, 1])


def test_drop_removes_what_is_rejected_and_frees_room() -> None:
    async def run() -> tuple[list[int], list[int]]:
        batches = Batches[int](max_size=4, capacity=4)
        for n in range(4):
            await batches.put(n)
        dropped = batches.drop(lambda n: n % 2 == 0)
        await asyncio.wait_for(batches.put(4), timeout=5)  # room again
        return dropped, await batches.take()

    assert asyncio.run(run()) == ([1, 3], [0, 2, 4])


@pytest.mark.parametrize(("max_size", "capacity"), [(0, 4), (5, 4)])
def test_sizes_are_checked(max_size: int, capacity: int) -> None:
    with pytest.raises(ValueError, match="max_size"):
        Batches[int](max_size=max_size, capacity=capacity)


def test_an_idle_taker_lingers_for_more_a_busy_one_does_not() -> None:
    async def run() -> tuple[list[int], list[int]]:
        batches = Batches[int](max_size=8, capacity=16, linger_s=0.2)
        taker = asyncio.create_task(batches.take())  # idle: waits for the first event
        await asyncio.sleep(0)
        await batches.put(1)
        await asyncio.sleep(0.01)
        await batches.put(2)  # arrives while the idle taker lingers
        lingered = await asyncio.wait_for(taker, timeout=5)
        await batches.put(3)  # buffered before take: taken at once
        return lingered, await asyncio.wait_for(batches.take(), timeout=0.1)

    assert asyncio.run(run()) == ([1, 2], [3])


def test_a_full_batch_ends_the_linger() -> None:
    async def run() -> list[int]:
        batches = Batches[int](max_size=2, capacity=4, linger_s=30.0)
        taker = asyncio.create_task(batches.take())
        await asyncio.sleep(0)
        await batches.put(1)
        await batches.put(2)
        return await asyncio.wait_for(taker, timeout=5)

    assert asyncio.run(run()) == [1, 2]
