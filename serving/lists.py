"""The latest published list per user, as the server keeps it from ``recommendations``.

Every record is validated with the contract model (`parse_recommendation`) before it
replaces a user's list: a record the server cannot use (no items, items not a list, an
item without item_id, user_id a list, not JSON...) is skipped and counted, and the
user keeps their last valid list. Explanations arrive as plain text (the model strips
markup and control characters), so a page can show them as they are.

>>> from streamrec.streams.broadcast import Record
>>> lists = LatestLists()
>>> lists.on_records([Record(b"u1", b'{"user_id": ["u1"], "items": []}', 0, 0, 0)])
>>> len(lists), lists.malformed
(0, 1)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from streamrec.streams.broadcast import Record
from streamrec.streams.contracts import InvalidEvent, RecommendationMessage, parse_recommendation

log = logging.getLogger(__name__)


class LatestLists:
    """user_id -> the newest valid `RecommendationMessage`, fed by a reader thread."""

    def __init__(self, on_message: Callable[[RecommendationMessage], None] | None = None) -> None:
        # Also handed every valid list (the experiments board reads their outcomes).
        self.on_message = on_message
        self._lists: dict[str, RecommendationMessage] = {}
        self._lock = threading.Lock()
        self.consumed = 0
        self.malformed = 0

    def on_records(self, records: list[Record]) -> None:
        for record in records:
            try:
                message = parse_recommendation(record.value)
            except InvalidEvent as exc:
                self.malformed += 1
                log.debug("skipping list at %d@%d: %s", record.partition, record.offset, exc)
                continue
            with self._lock:
                self._lists[message.user_id] = message
                self.consumed += 1
            if self.on_message is not None:
                self.on_message(message)

    def get(self, user_id: str) -> RecommendationMessage | None:
        with self._lock:
            return self._lists.get(user_id)

    def __len__(self) -> int:
        return len(self._lists)
