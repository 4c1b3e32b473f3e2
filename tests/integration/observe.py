"""What integration tests watch on the output topics: lists per user, and dead letters."""

from __future__ import annotations

import base64
import threading

import orjson

from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader


class Lists:
    """The highest ``user_events`` seen on ``recommendations`` per user (a count applied)."""

    def __init__(self, settings: Settings, name: str = "lists") -> None:
        self.events: dict[str, int] = {}
        self.latest: dict[str, dict] = {}
        self._reader = TopicReader(settings.bootstrap_servers, settings.topic_recommendations, self._on, name).start()

    def _on(self, records: list[Record]) -> None:
        for message in map(orjson.loads, (r.value for r in records)):
            user = message["user_id"]
            self.latest[user] = message
            self.events[user] = max(self.events.get(user, 0), message["user_events"])

    def reached(self, expected: dict[str, int]) -> bool:
        return all(self.events.get(user, 0) >= n for user, n in expected.items())

    def short(self, expected: dict[str, int]) -> dict[str, tuple[int | None, int]]:
        """Users whose count differs from ``expected``: (seen, expected)."""
        return {u: (self.events.get(u), n) for u, n in expected.items() if self.events.get(u) != n}

    def stop(self) -> None:
        self._reader.stop()


class DeadLetters:
    """Every ``events.dlq`` record, with its original decoded back to bytes."""

    def __init__(self, settings: Settings, name: str = "dlq") -> None:
        self.letters: list[dict] = []
        self._lock = threading.Lock()
        self._reader = TopicReader(settings.bootstrap_servers, settings.topic_dlq, self._on, name).start()

    def _on(self, records: list[Record]) -> None:
        with self._lock:
            self.letters.extend(map(orjson.loads, (r.value for r in records)))

    def about(self, marker: bytes) -> list[dict]:
        """The dead letters whose original contains ``marker``."""
        with self._lock:
            return [d for d in self.letters if marker in original(d)]

    def stop(self) -> None:
        self._reader.stop()


def every_list(settings: Settings, name: str) -> tuple[list[dict], TopicReader]:
    """Every message on ``recommendations``, in order, appended as it arrives; and its reader."""
    lists: list[dict] = []
    reader = TopicReader(
        settings.bootstrap_servers,
        settings.topic_recommendations,
        lambda records: lists.extend(orjson.loads(r.value) for r in records),
        name,
    ).start()
    return lists, reader


def original(letter: dict) -> bytes:
    text = letter.get("original") or ""
    return base64.b64decode(text) if letter.get("encoding") == "base64" else text.encode()
