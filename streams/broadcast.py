"""Read every partition of a topic from the beginning, outside any consumer group.

Used where each process needs the whole topic: the catalog (``items``) in every worker,
and the latest list per user (``recommendations``) in every serving replica. A group
consumer would split partitions between replicas; this reader does not (a replica may
still choose its partitions, and resume each from an offset it stored).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
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
# Pause after the client itself fails, so a persistent error does not spin a core.
ERROR_BACKOFF_S = 1.0
# Log the first few records a reader skips, then one in this many (bad data can be a flood).
LOG_EVERY_SKIP = 1000
LOG_FIRST_SKIPS = 10


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes
    timestamp_ms: int
    partition: int
    offset: int


Handler = Callable[[list[Record]], None]
T = TypeVar("T")


def log_skip(count: int, exc: Exception, what: str, *args: object) -> None:
    """Log the ``count``-th skipped record: the first few, then one in `LOG_EVERY_SKIP`;
    with a traceback unless ``exc`` says the data is invalid (a `ValueError`)."""
    if count <= LOG_FIRST_SKIPS or count % LOG_EVERY_SKIP == 0:
        log.warning(what + ": %s (%d skipped so far)", *args, exc, count, exc_info=not isinstance(exc, ValueError))


class TopicReader:
    """Tail ``topic`` in a daemon thread, calling ``handler`` with batches of records.

    No record can stop the reader: if ``handler`` raises on a batch, it is called again
    with each record of the batch alone, and the records it still raises on are logged,
    counted (`skipped`) and passed over. Handlers must therefore tolerate seeing a
    record twice (latest-wins maps and offset-deduplicated logs do). `alive` and
    `caught_up` are for health checks.

    >>> reader = TopicReader("127.0.0.1:9092", "items", print)  # doctest: +SKIP
    >>> reader.start(); reader.wait_caught_up(10); reader.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        handler: Handler,
        name: str = "reader",
        partitions: Collection[int] | None = None,
        start: Mapping[int, int] | None = None,
    ) -> None:
        """Read ``partitions`` (None: all), each from its offset in ``start`` (default: the beginning)."""
        self.topic = topic
        self.handler = handler
        self.partitions = partitions
        self.start_offsets = start or {}
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"streamrec-{name}-unused",  # required by the client; never joined
                "enable.auto.commit": False,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                "fetch.min.bytes": 1,
                # A start offset the broker no longer has (retention, a recreated topic)
                # re-reads what is retained: every reader here is idempotent, and the
                # client's default ("latest") would skip every retained record.
                "auto.offset.reset": "earliest",
            }
        )
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}:{topic}", daemon=True)
        self.records = 0
        self.skipped = 0

    @property
    def alive(self) -> bool:
        """The reading thread runs (it stops only when told to)."""
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def caught_up(self) -> bool:
        """It has read everything that was on the topic when it started."""
        return self._caught_up.is_set()

    def start(self) -> TopicReader:
        meta = self._consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {self.topic}: {meta.error}")
        missing = set(self.partitions or ()) - set(meta.partitions)
        if missing:
            raise RuntimeError(f"topic {self.topic} has no partition {sorted(missing)}")
        read = sorted(meta.partitions if self.partitions is None else self.partitions)
        self._consumer.assign(
            [TopicPartition(self.topic, p, self.start_offsets.get(p, OFFSET_BEGINNING)) for p in read]
        )
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
            try:
                batch = [self._record(m) for m in self._next_messages() if _ok(m)]
            except Exception:
                log.exception("reading %s failed; retrying in %.0f s", self.topic, ERROR_BACKOFF_S)
                self._stop.wait(ERROR_BACKOFF_S)
                continue
            if batch:
                self.records += len(batch)
                self._handle(batch)
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= IDLE_AS_CAUGHT_UP_S:
                self._caught_up.set()

    def _handle(self, batch: list[Record]) -> None:
        try:
            self.handler(batch)
            return
        except Exception:
            log.warning("%s: handler failed on a batch of %d; retrying record by record", self.topic, len(batch))
        for record in batch:
            try:
                self.handler([record])
            except Exception as exc:
                self.skipped += 1
                log_skip(self.skipped, exc, "handler failed on %s[%d]@%d", self.topic, record.partition, record.offset)

    def _next_messages(self) -> list:
        """Wait for the first message, then take what else is ready.

        ``consume(n, timeout)`` blocks for the whole timeout unless ``n`` messages are
        ready: at low rates every record arrived ~100 ms late (measured, backtest issue).
        """
        first = self._consumer.poll(POLL_TIMEOUT_S)
        return [] if first is None else [first, *self._consumer.consume(POLL_BATCH - 1, 0)]

    @staticmethod
    def _record(m) -> Record:
        return Record(m.key(), m.value() or b"", m.timestamp()[1], m.partition(), m.offset())


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


def _ok(message) -> bool:
    error = message.error()
    if error is not None and error.code() != KafkaError._PARTITION_EOF:
        log.warning("reader error on %s: %s", message.topic(), error)
    return error is None


class UpdateLog(Generic[T]):
    """A topic followed as an append-only log of parsed updates.

    The reader thread parses records (`parse`) and queues them; the owner applies them
    on its own thread (`refresh`), and every dependant follows the log with its own
    cursor (`updates_since`), so none misses an update another one consumed and a
    newcomer (a hot-reloaded model) can replay it all from cursor 0. A record `parse`
    raises on is logged, counted (`skipped`) and passed over.
    """

    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._log: list[T] = []
        self._base = 0  # log position of ``_log[0]``: updates before it were forgotten
        self._lock = threading.Lock()
        self.skipped = 0

    def parse(self, record: Record) -> Iterable[T]:
        """Updates carried by one record (none if a duplicate); raises if it is invalid."""
        raise NotImplementedError

    def apply(self, update: T) -> None:
        """Fold one update into derived state (under the lock)."""

    def on_records(self, records: list[Record]) -> None:
        """Reader-thread callback."""
        for record in records:
            try:
                updates = list(self.parse(record))
            except Exception as exc:
                self.skipped += 1
                log_skip(
                    self.skipped,
                    exc,
                    "%s: ignoring the unusable record at offset %d",
                    type(self).__name__,
                    record.offset,
                )
                continue
            for update in updates:
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
            if cursor < self._base:
                raise ValueError(f"updates before position {self._base} were forgotten (asked from {cursor})")
            return self._log[cursor - self._base :], self._base + len(self._log)

    def forget_before(self, cursor: int) -> None:
        """Drop the updates before position ``cursor``, which no follower will ask for
        again: memory then holds only what arrived since (positions stay absolute).

        >>> log = UpdateLog[int](); log._log = [1, 2, 3]
        >>> log.forget_before(2); log.updates_since(2)
        ([3], 3)
        """
        with self._lock:
            drop = min(cursor, self._base + len(self._log)) - self._base
            if drop > 0:
                del self._log[:drop]
                self._base += drop

    def behind(self, cursor: int) -> int:
        """Updates a dependant at ``cursor`` has not taken yet: queued and logged after it."""
        with self._lock:
            return self._pending.qsize() + self._base + len(self._log) - cursor  # positions are absolute

    def start_offsets(self) -> dict[int, int]:
        """Partition -> the offset to start reading at; default: none, every partition from
        its beginning."""
        return {}

    def follow(self, bootstrap: str, topic: str, name: str) -> TopicReader:
        """Start tailing ``topic`` into this log (from `start_offsets`)."""
        return TopicReader(bootstrap, topic, self.on_records, name=name, start=self.start_offsets()).start()
