"""The lists on the ``recommendations`` topic, as a reader outside the worker sees them.

`published` turns one record into a `Published` list. Its publication time is the
record's timestamp (CreateTime: the worker's producer stamps it when it takes the list),
the one clock every event -> list latency here is measured on (`streams.freshness`, the
backtest), against production times taken with `time.time()` on the same machine.

`ListBook` follows the topic: the latest list per user, every list once asked to
record, a hook per list (freshness), counts per model; with ``keep_messages`` also each
user's latest message as published (scores, reasons: what an HTTP server returns).

>>> from streamrec.streams.broadcast import Record
>>> book = ListBook(keep_messages=True)
>>> value = b'{"user_id": "u", "items": [{"item_id": "a", "score": 0.5}], "user_events": 2, "model": "popularity"}'
>>> book.on_records([Record(b"u", value, 1500, 0, 0), Record(b"v", b"{oops", 1600, 0, 1)])
>>> book.latest["u"], book.user_events("u"), book.models, book.malformed
(Published(user_id='u', items=('a',), user_events=2, published_at=1.5), 2, Counter({'popularity': 1}), 1)
>>> book.message("u")["items"]
[{'item_id': 'a', 'score': 0.5}]
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from streamrec.models.prequential import Published
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader

OnList = Callable[[Published], None]


def published(record: Record) -> tuple[Published, dict[str, Any]]:
    """The list one record carries, and the message itself (``KeyError``/``ValueError`` if malformed)."""
    data = orjson.loads(record.value)
    items = tuple(entry["item_id"] for entry in data["items"])
    return Published(data["user_id"], items, int(data["user_events"]), record.timestamp_ms / 1000.0), data


class ListBook:
    """Lists read from ``recommendations``: the latest per user, and every one once recording.

    `on_records` runs on the reader thread; waiters (`wait_for`, the backtest's gate)
    wait on ``cond``, which is notified after every batch.
    """

    def __init__(self, on_list: OnList | None = None, keep_messages: bool = False) -> None:
        self.cond = threading.Condition()
        self.latest: dict[str, Published] = {}
        self.recorded: list[Published] = []
        self.recording = False
        self.models: Counter[str] = Counter()
        self.malformed = 0
        self.on_list = on_list
        self.messages: dict[str, dict[str, Any]] | None = {} if keep_messages else None

    def follow(self, settings: Settings, name: str) -> TopicReader:
        """Start reading the recommendations topic (from its beginning) into this book."""
        return TopicReader(settings.bootstrap_servers, settings.topic_recommendations, self.on_records, name).start()

    def on_records(self, records: list[Record]) -> None:
        lists = []
        for record in records:
            try:
                lists.append(published(record))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.malformed += 1
        with self.cond:
            for listed, message in lists:
                self.latest[listed.user_id] = listed
                self.models[message.get("model", "")] += 1
                if self.messages is not None:
                    self.messages[listed.user_id] = message
                if self.on_list is not None:
                    self.on_list(listed)
            if self.recording:
                self.recorded.extend(listed for listed, _ in lists)
            self.cond.notify_all()

    @property
    def lists(self) -> int:
        """Lists read so far."""
        return sum(self.models.values())

    def message(self, user_id: str) -> dict[str, Any] | None:
        """The user's latest message as published (needs ``keep_messages``)."""
        if self.messages is None:
            raise ValueError("this ListBook keeps no messages (keep_messages=False)")
        with self.cond:
            return self.messages.get(user_id)

    def user_events(self, user_id: str) -> int:
        """How many of the user's events their latest list reflects (0: no list yet)."""
        listed = self.latest.get(user_id)
        return listed.user_events if listed else 0

    def wait_for(self, expected: dict[str, int], timeout_s: float) -> int:
        """Block until each user's latest list has ``user_events >= expected``; returns how many lag."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while (lagging := self._lagging(expected)) and time.monotonic() < deadline:
                self.cond.wait(0.5)
        return lagging

    def start_recording(self) -> list[Published]:
        """From now on keep every list; returns the latest per user so far (what users saw)."""
        with self.cond:
            self.recording = True
            return list(self.latest.values())

    def _lagging(self, expected: dict[str, int]) -> int:
        return sum(1 for user, n in expected.items() if self.user_events(user) < n)
