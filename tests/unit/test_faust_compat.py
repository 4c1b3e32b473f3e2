"""The Faust internals streams/faust_compat.py patches still have the shape it expects.

A faust-streaming upgrade that changes one of them fails here, not in a running worker;
pyproject pins the minor version these checks were written against.
"""

from __future__ import annotations

import asyncio
import inspect
from contextvars import ContextVar

import aiokafka
import pytest
from faust import streams
from faust.events import Event
from faust.transport.drivers import aiokafka as faust_aiokafka
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
    finally_block = source[source.index("yield list(events)"):]
    assert "for event in events:\n                            await self.ack(event)" in finally_block


@pytest.mark.parametrize("holds", [0, 1])
def test_a_held_message_is_acked_only_when_settled(holds: int) -> None:
    acked = []

    class Consumer:
        def ack(self, message: ConsumerMessage) -> bool:
            acked.append(message.offset)
            return True

    message = ConsumerMessage("events", 0, 7, 0.0, 0, None, b"k", b"v", None)
    message.incref()  # the one reference the stream takes
    event = Event(type("App", (), {"consumer": Consumer()})(), b"k", b"v", None, message)
    for _ in range(holds):
        faust_compat.hold(event)
    event.ack()  # what take_events does after the loop body
    assert acked == ([] if holds else [7])
    if holds:
        faust_compat.settle(event)
        assert acked == [7]
