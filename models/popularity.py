"""Popularity: items ranked by their event-type-weighted interaction count.

.. math:: s(i) = \\sum_{e \\,:\\, item(e) = i} w_{type(e)}

The fallback for users with no history, and the baseline every model must beat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from streamrec.models.base import ArrayRecommender, ItemVocab, TopK, top_k_chunked
from streamrec.types import EVENT_WEIGHTS, Interaction, Item, UserContext


class ItemScores:
    """A dense, growable score vector over an `ItemVocab`, with an unavailable set."""

    def __init__(self, vocab: ItemVocab | None = None) -> None:
        self.vocab = vocab or ItemVocab()
        self.scores = np.zeros(max(len(self.vocab), 64), dtype=np.float64)
        self.unavailable: set[int] = set()

    def index(self, item_id: str) -> int:
        idx = self.vocab.add(item_id)
        if idx >= len(self.scores):
            self.scores = np.concatenate([self.scores, np.zeros(len(self.scores), dtype=np.float64)])
        return idx

    def update_items(self, items: Iterable[Item]) -> None:
        for item in items:
            idx = self.index(item.item_id)
            (self.unavailable.discard if item.available else self.unavailable.add)(idx)

    def banned(self, user: UserContext) -> list[int]:
        seen = self.vocab.indices(user.exclude)
        return [*self.unavailable, *seen[seen >= 0].tolist()]

    def live(self) -> np.ndarray:
        """Scores of the known items; slots beyond the vocabulary are unused capacity."""
        return self.scores[: len(self.vocab)]


class Popularity(ArrayRecommender):
    """Most popular items the user has not excluded."""

    name = "popularity"
    ITEM_STATE = ("items",)

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.weights = dict(EVENT_WEIGHTS if weights is None else weights)
        self.items = ItemScores()

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        idx = self.items.index(interaction.item_id)  # may grow `scores`: index first, then read it
        self.items.scores[idx] += self.weights[interaction.event_type]

    def update_items(self, items: Iterable[Item]) -> None:
        self.items.update_items(items)

    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        scores = self.items.live()

        def rows(chunk: Sequence[UserContext]) -> np.ndarray:
            return np.broadcast_to(scores, (len(chunk), len(scores)))  # a view: top_k_rows copies it

        return top_k_chunked(users, k, self.items.vocab, rows, self.items.banned)
