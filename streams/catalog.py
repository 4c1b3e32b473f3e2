"""The item catalog: every item ever announced on the ``items`` topic, latest version wins.

Each worker and serving replica keeps the whole catalog, fed by a `TopicReader`. The
reader thread only queues records; the owner drains them on its own thread (the
worker's event loop), so recommenders are never touched from two threads.
"""

from __future__ import annotations

import logging
import queue

from streams.broadcast import Record, TopicReader
from streams.contracts import InvalidEvent, Item, parse_item

log = logging.getLogger(__name__)


class Catalog:
    """item_id -> `Item`, with a queue of updates not yet drained."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self._pending: queue.SimpleQueue[Item] = queue.SimpleQueue()
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

    def drain(self) -> list[Item]:
        """Apply queued updates; return them so dependants (models, indexes) can follow."""
        updates = []
        while True:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                return updates
            self.items[item.item_id] = item
            updates.append(item)

    def follow(self, bootstrap: str, topic: str, name: str) -> TopicReader:
        """Start tailing ``topic`` into this catalog."""
        return TopicReader(bootstrap, topic, self.on_records, name=name).start()
