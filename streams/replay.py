"""Produce logged events (and catalogs) to the broker: as fast as possible, at a fixed
rate, or time-scaled to the log's own clock, with a progress bar.

Events are produced in the order given (logs are read in time order) and keyed by
user, so each user's events stay in order on one partition.

Nothing is lost silently: every producer here counts the broker's failed delivery
reports (`Deliveries`), and a call that could not deliver everything it produced raises
`UndeliveredError` saying how many records and why (e.g. the broker stayed away longer
than ``message.timeout.ms``), so a replay for a backtest never scores a thinned log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streamrec.settings import Settings
from streamrec.streams.contracts import encode_event, encode_item
from streamrec.streams.kafka import producer_config
from streamrec.types import Event, Item

OnSent = Callable[[Event, float], None]


@dataclass
class ReplayStats:
    events: int = 0
    wall_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0


class Pacer:
    """When to send the next event: ``rate`` events/s, or the log's clock / ``speedup``.

    >>> p = Pacer(rate=100.0); p.start(0.0); p.due(Event("u", "i", "view", 5.0))
    0.0
    >>> p.due(Event("u", "i", "view", 9.0))
    0.01
    """

    def __init__(self, rate: float | None = None, speedup: float | None = None) -> None:
        if rate is not None and speedup is not None:
            raise ValueError("give a rate or a speedup, not both")
        self.rate, self.speedup = rate, speedup
        self.n = 0
        self.t0 = 0.0
        self.log_t0: float | None = None

    def start(self, now: float) -> None:
        self.t0, self.n, self.log_t0 = now, 0, None

    def due(self, event: Event) -> float:
        """Wall-clock time at which ``event`` should be sent."""
        self.n += 1
        if self.rate:
            return self.t0 + (self.n - 1) / self.rate
        if self.speedup:
            self.log_t0 = event.ts if self.log_t0 is None else self.log_t0
            return self.t0 + (event.ts - self.log_t0) / self.speedup
        return self.t0


class UndeliveredError(RuntimeError):
    """Records were sent but the broker never acknowledged them."""


class Failures:
    """A producer's failed delivery reports: how many, and the first reason.

    Its own object, not a method of `Sender`: a producer holding a callback bound to its
    owner would form a cycle that keeps both (and the client's threads) alive.

    >>> f = Failures(); f(KafkaError(KafkaError._MSG_TIMED_OUT), None); f.count
    1
    """

    def __init__(self) -> None:
        self.count, self.reason = 0, ""

    def __call__(self, error: KafkaError | None, _message: Message | None) -> None:
        if error is not None:
            self.count += 1
            self.reason = self.reason or str(error)


class Sender:
    """A producer that must deliver everything it sends: leaving the ``with`` block
    flushes, then raises `UndeliveredError` if the broker failed any record."""

    def __init__(self, settings: Settings, **extra: Any) -> None:
        self.sent, self.failures = 0, Failures()
        # Only failures call back: success reports would cost a Python call per record.
        config = producer_config(settings, on_delivery=self.failures, **{"delivery.report.only.error": True, **extra})
        self.producer = Producer(config)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if error_type is None:  # on an error (Ctrl-C too) do not wait out a dead broker
            self.producer.flush()
            self.check()

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        """Queue one record (waiting while the local queue is full)."""
        while True:
            try:
                self.producer.produce(topic, key=key.encode() if key is not None else None, value=value)
                self.producer.poll(0)
                self.sent += 1
                return
            except BufferError:  # local queue full: let the client send, then retry
                self.producer.poll(0.05)

    def check(self) -> None:
        """Raise `UndeliveredError` if any record sent so far failed."""
        if self.failures.count:
            raise UndeliveredError(
                f"{self.failures.count:,} of {self.sent:,} records were not delivered: {self.failures.reason}"
            )


def progress_bar(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        disable=disable,
    )


def replay(
    events: Iterable[Event],
    settings: Settings,
    pacer: Pacer | None = None,
    total: int | None = None,
    on_sent: OnSent | None = None,
    quiet: bool = False,
) -> ReplayStats:
    """Produce ``events`` to the events topic; returns how many and how long.

    Raises `UndeliveredError` after the last event if the broker did not take them all.
    """
    pacer = pacer or Pacer()
    stats = ReplayStats()
    with progress_bar(quiet) as bar, Sender(settings) as out:
        task = bar.add_task("replay", total=total, rate="")
        t0 = time.time()
        pacer.start(t0)
        for event in events:
            _wait_until(pacer.due(event), out.producer)
            out.send(settings.topic_events, event.user_id, encode_event(event))
            if on_sent:
                on_sent(event, time.time())
            stats.events += 1
            if stats.events % 1000 == 0:
                bar.update(task, completed=stats.events, rate=f"{stats.events / (time.time() - t0):,.0f} ev/s")
        out.producer.flush()
        stats.wall_s = time.time() - t0
        bar.update(task, completed=stats.events, rate=f"{stats.rate:,.0f} ev/s")
    return stats


def produce_items(items: Iterable[Item], settings: Settings) -> int:
    """Announce items on the items topic (key = item_id); returns how many."""
    return produce_raw(settings, settings.topic_items, ((item.item_id, encode_item(item)) for item in items))


def produce_raw(settings: Settings, topic: str, records: Iterable[tuple[str | None, bytes]]) -> int:
    """Send ``(key, value)`` records as they are, in order, with one producer.

    For tests and tools that need malformed input, which `replay` would refuse to build.
    Returns how many; raises `UndeliveredError` if any was not delivered.
    """
    with Sender(settings) as out:
        for key, value in records:
            out.send(topic, key, value)
    return out.sent


def _wait_until(when: float, out: Producer) -> None:
    delay = when - time.time()
    if delay > 0:
        out.poll(0)
        time.sleep(delay)
