"""Read every partition of a topic from the beginning, outside any consumer group.

Used where each process needs the whole topic: the catalog (``items``) in every worker,
and the latest list per user (``recommendations``) in every serving replica. A group
consumer would split partitions between replicas; this reader does not.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

log = logging.getLogger(__name__)

# Short fetch waits keep readers fresh (the broker holds a fetch up to this long).
FETCH_WAIT_MS = 10
POLL_BATCH = 1000
POLL_TIMEOUT_S = 0.1
# With no end offsets to trust (the embedded broker reports them wrong), "caught up"
# means: the first poll after start-up that came back empty after this long.
IDLE_AS_CAUGHT_UP_S = 0.5


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes
    timestamp_ms: int
    partition: int
    offset: int


Handler = Callable[[list[Record]], None]
T = TypeVar("T")


class TopicReader:
    """Tail ``topic`` in a daemon thread, calling ``handler`` with batches of records.

    >>> reader = TopicReader("127.0.0.1:9092", "items", print)  # doctest: +SKIP
    >>> reader.start(); reader.wait_caught_up(10); reader.stop()  # doctest: +SKIP
    """

    def __init__(self, bootstrap: str, topic: str, handler: Handler, name: str = "reader") -> None:
        self.topic = topic
        self.handler = handler
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"streamrec-{name}-unused",  # required by the client; never joined
                "enable.auto.commit": False,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                "fetch.min.bytes": 1,
            }
        )
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}:{topic}", daemon=True)
        self.records = 0

    def start(self) -> TopicReader:
        meta = self._consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {self.topic}: {meta.error}")
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        self._thread.start()
        return self

    def wait_caught_up(self, timeout_s: float) -> bool:
        return self._caught_up.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            batch = [self._record(m) for m in self._next_messages() if _ok(m)]
            if batch:
                self.records += len(batch)
                self.handler(batch)
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= IDLE_AS_CAUGHT_UP_S:
                self._caught_up.set()

    def _next_messages(self) -> list:
        """Wait for the first message, then take what else is ready.

        ``consume(n, timeout)`` blocks for the whole timeout unless ``n`` messages are
        ready: at low rates every record arrived ~100 ms late (measured, backtest issue).
        """
        first = self._consumer.poll(POLL_TIMEOUT_S)
        return [] if first is None else [first, *self._consumer.consume(POLL_BATCH - 1, 0)]

    @staticmethod
    def _record(m) -> Record:  # noqa: ANN001 - confluent_kafka.Message
        return Record(m.key(), m.value(), m.timestamp()[1], m.partition(), m.offset())


def read_all(bootstrap: str, topic: str, timeout_s: float, name: str = "snapshot") -> list[Record]:
    """Every record on ``topic`` so far, read until caught up (end offsets are not
    trusted: the embedded broker reports them wrong); `TimeoutError` past ``timeout_s``."""
    records: list[Record] = []
    reader = TopicReader(bootstrap, topic, records.extend, name=name).start()
    caught_up = reader.wait_caught_up(timeout_s)
    reader.stop()
    if not caught_up:
        raise TimeoutError(f"{topic} still being read after {timeout_s:.0f} s")
    return records


def _ok(message) -> bool:  # noqa: ANN001 - confluent_kafka.Message
    error = message.error()
    if error is not None and error.code() != KafkaError._PARTITION_EOF:
        log.warning("reader error on %s: %s", message.topic(), error)
    return error is None


class UpdateLog(Generic[T]):
    """A topic followed as an append-only log of parsed updates.

    The reader thread parses records (`parse`) and queues them; the owner applies them
    on its own thread (`refresh`), and every dependant follows the log with its own
    cursor (`updates_since`), so none misses an update another one consumed and a
    newcomer (a hot-reloaded model) can replay it all from cursor 0.
    """

    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._log: list[T] = []
        self._lock = threading.Lock()

    def parse(self, record: Record) -> Iterable[T]:
        """Updates carried by one record (none if it is invalid or a duplicate)."""
        raise NotImplementedError

    def apply(self, update: T) -> None:  # noqa: B027 - optional hook
        """Fold one update into derived state (under the lock)."""

    def on_records(self, records: list[Record]) -> None:
        """Reader-thread callback."""
        for record in records:
            for update in self.parse(record):
                self._pending.put(update)

    def refresh(self) -> None:
        """Apply the updates the reader queued."""
        with self._lock:
            while True:
                try:
                    update = self._pending.get_nowait()
                except queue.Empty:
                    return
                self.apply(update)
                self._log.append(update)

    def updates_since(self, cursor: int) -> tuple[list[T], int]:
        """Updates after position ``cursor`` of the log, and the new cursor."""
        self.refresh()
        with self._lock:
            return self._log[cursor:], len(self._log)

    def follow(self, bootstrap: str, topic: str, name: str) -> TopicReader:
        """Start tailing ``topic`` into this log."""
        return TopicReader(bootstrap, topic, self.on_records, name=name).start()
