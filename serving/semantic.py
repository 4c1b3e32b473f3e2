"""Semantic endpoints' backend: text search and similar items through the newest model.

The model is loaded on first use (torch and the text encoder cost seconds a server
that only relays lists never pays) and replaced when a newer artifact appears, the
same way workers hot-reload. Catalog updates are handed to it before every query so a
brand-new item is searchable at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from streamrec.models.registry import RecommenderOptions, transformer
from streamrec.models.versions import latest_version
from streamrec.settings import Settings
from streamrec.streams.catalog import Catalog
from streamrec.types import Ranked

if TYPE_CHECKING:  # torch loads with it; the model is loaded on first use
    from streamrec.models.transformer import TransformerRecommender


class NoModel(RuntimeError):
    """No trained artifact exists yet."""


class SemanticIndex:
    """search(text) and similar(item_id) over the catalog, through the newest artifact."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._model: TransformerRecommender | None = None
        self._version: str | None = None
        self._cursor = 0
        self._lock = threading.Lock()

    def search(self, text: str, k: int) -> Ranked:
        with self._lock:
            return self._current().search(text, k)

    def similar(self, item_id: str, k: int) -> Ranked:
        with self._lock:
            return self._current().similar(item_id, k)

    def _current(self) -> TransformerRecommender:
        version = latest_version(self.settings.model_dir)
        if version is None:
            raise NoModel(f"no model artifact under {self.settings.model_dir}: run `streamrec train`")
        model = self._model
        if model is None or version != self._version:
            model = self._model = transformer(RecommenderOptions.of(self.settings))
            self._version, self._cursor = version, 0
        updates, self._cursor = self.catalog.updates_since(self._cursor)
        model.update_items(updates)
        return model
