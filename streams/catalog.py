"""The item catalog: every item ever announced on the ``items`` topic, latest version wins.

Each worker and serving replica keeps the whole catalog (an `UpdateLog` of the topic):
every dependant (a recommender, a search index) follows it with its own cursor.

>>> catalog = Catalog()
>>> catalog.on_records([Record(None, b'{"item_id": "a", "title": "A"}', 0, 0, 0)])
>>> updates, cursor = catalog.updates_since(0)
>>> [i.item_id for i in updates], cursor, catalog.updates_since(cursor)
(['a'], 1, ([], 1))
>>> catalog.on_records([Record(None, b'{"item_id": 7}', 0, 0, 1), Record(None, b'[]', 0, 0, 2)])
>>> catalog.skipped, len(catalog)
(2, 1)
"""

from __future__ import annotations

from streamrec.streams.broadcast import Record, UpdateLog
from streamrec.streams.contracts import parse_item
from streamrec.types import Item


class Catalog(UpdateLog[Item]):
    """item_id -> `Item` (latest version wins), plus the log of every update applied."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, Item] = {}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def __len__(self) -> int:
        return len(self.items)

    def title(self, item_id: str) -> str:
        item = self.items.get(item_id)
        return item.title if item else item_id

    def parse(self, record: Record) -> list[Item]:
        return [parse_item(record.value)]  # an invalid item raises: skipped and counted

    def apply(self, update: Item) -> None:
        self.items[update.item_id] = update
