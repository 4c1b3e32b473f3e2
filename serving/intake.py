"""The server's event intake: produce to ``events`` and wait for the broker's acknowledgement.

``POST /v1/events`` answers 202 only once the broker has acknowledged the record with
``acks=all`` (`streamrec.streams.kafka.producer_config`: murmur2 keys, so a user's
events land where the workers expect them). A record not acknowledged within
``http_ack_timeout_s`` is reported as such and the request answered 503: it may or may
not be stored, and a retry with the same ``event_id`` is safe (workers drop duplicates).
The producer gives such a record up after the same time (``message.timeout.ms``), so
it is not delivered minutes later behind the client's back.

One thread serves the producer's delivery reports and settles each request's futures
on the event loop that waits for them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from confluent_kafka import KafkaException, Producer

from streamrec.settings import Settings
from streamrec.streams.contracts import encode_event
from streamrec.streams.kafka import producer_config
from streamrec.types import Event

# How long the delivery-report thread blocks per poll (it exits within this on close).
POLL_S = 0.05
# Shutdown: time left to the producer to deliver what it holds.
CLOSE_FLUSH_S = 5.0
NOT_ACKNOWLEDGED = "not acknowledged by the broker within {:g} s"

# Per event: None once acknowledged, else why not.
Outcome = str | None


class Intake:
    """Produce events keyed by user and report, per event, whether the broker stored it."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_events
        self.timeout_s = settings.http_ack_timeout_s
        self._producer = Producer(
            producer_config(settings, **{"message.timeout.ms": max(1, int(self.timeout_s * 1000))})
        )
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve_reports, name="intake-reports", daemon=True)
        self._thread.start()

    async def publish(self, events: Sequence[Event]) -> list[Outcome]:
        """Send ``events`` (in order) and wait, at most ``timeout_s``, for every acknowledgement."""
        loop = asyncio.get_running_loop()
        futures = [self._send(event, loop) for event in events]
        if futures:
            await asyncio.wait(futures, timeout=self.timeout_s)
        return [f.result() if f.done() else NOT_ACKNOWLEDGED.format(self.timeout_s) for f in futures]

    def close(self) -> None:
        self._producer.flush(CLOSE_FLUSH_S)
        self._closing.set()
        self._thread.join(timeout=CLOSE_FLUSH_S)

    def _send(self, event: Event, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = loop.create_future()

        def delivered(error: object, _message: object) -> None:  # the reports thread
            outcome = None if error is None else f"broker refused the record: {error}"
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

        try:
            self._producer.produce(
                self.topic, key=event.user_id.encode(), value=encode_event(event), on_delivery=delivered
            )
        except (BufferError, KafkaException) as exc:  # queue full, or the client refused it
            future.set_result(f"could not queue the record: {exc}")
        return future

    def _serve_reports(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(POLL_S)


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)
