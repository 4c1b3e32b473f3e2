"""The item catalog: every item ever announced on the ``items`` topic, latest version wins.

Each worker and serving replica keeps the whole catalog, fed by a `TopicReader`. The
reader thread only queues records; readers of the catalog apply them (`refresh`) on
their own thread, and every dependant (a recommender, a search index) follows the
append-only update log with its own cursor (`updates_since`), so none misses an update
another one consumed.

>>> catalog = Catalog()
>>> catalog.on_records([Record(None, b'{"item_id": "a", "title": "A"}', 0, 0, 0)])
>>> updates, cursor = catalog.updates_since(0)
>>> [i.item_id for i in updates], cursor, catalog.updates_since(cursor)
(['a'], 1, ([], 1))
"""

from __future__ import annotations

import logging
import queue
import threading

from streams.broadcast import Record, TopicReader
from streams.contracts import InvalidEvent, Item, parse_item

log = logging.getLogger(__name__)


class Catalog:
    """item_id -> `Item` (latest version wins), plus the log of every update applied."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self._pending: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._log: list[Item] = []
        self._lock = threading.Lock()
        self.rejected = 0

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def __len__(self) -> int:
        return len(self.items)

    def title(self, item_id: str) -> str:
        item = self.items.get(item_id)
        return item.title if item else item_id

    def on_records(self, records: list[Record]) -> None:
        """Reader-thread callback: validate and queue."""
        for record in records:
            try:
                self._pending.put(parse_item(record.value))
            except InvalidEvent as exc:
                self.rejected += 1
                log.warning("ignoring invalid item at offset %d: %s", record.offset, exc)

    def refresh(self) -> None:
        """Apply the updates the reader queued."""
        with self._lock:
            while True:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    return
                self.items[item.item_id] = item
                self._log.append(item)

    def updates_since(self, cursor: int) -> tuple[list[Item], int]:
        """Updates after position ``cursor`` of the log, and the new cursor."""
        self.refresh()
        with self._lock:
            return self._log[cursor:], len(self._log)

    def follow(self, bootstrap: str, topic: str, name: str) -> TopicReader:
        """Start tailing ``topic`` into this catalog."""
        return TopicReader(bootstrap, topic, self.on_records, name=name).start()
