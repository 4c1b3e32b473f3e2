"""Streaming item co-occurrence: items that tend to follow the user's recent items.

Learning: when a user does item ``i`` after window items ``j_1..j_L`` (newest first),

.. math:: C[j_d, i] \\mathrel{+}= w_{type(i)} \\cdot \\gamma^{d-1}, \\quad d = 1..L

Scoring a user with recent items ``j_1..j_M`` (newest first), popularity ``P``:

.. math:: s(i) = \\frac{\\sum_d \\gamma^{d-1} w_{type(j_d)} C[j_d, i] / \\|C[j_d]\\|_1}{\\max_i(\\cdot)}
          + \\beta \\frac{P(i)}{\\max_i P(i)}

so users with no history (or only never-followed items) fall back to popularity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from models.base import EVENT_WEIGHTS, Interaction, Ranked, Recommender, UserContext, top_k
from models.popularity import Popularity
from streams.contracts import Item

# How many earlier window items an event is credited to, and how fast credit decays.
LEARN_SPAN = 3
CONTEXT_SPAN = 5
DECAY = 0.6
# Weight of (normalised) popularity in the blend; also the tie-breaker between neighbours.
POPULARITY_BLEND = 0.1


class CoOccurrence(Recommender):
    """Next-item co-occurrence blended with popularity."""

    name = "cooccurrence"

    def __init__(self, weights: dict[str, float] | None = None, blend: float = POPULARITY_BLEND) -> None:
        self.weights = dict(EVENT_WEIGHTS if weights is None else weights)
        self.popularity = Popularity(self.weights)
        self.items = self.popularity.items
        self.blend = blend
        self.counts: defaultdict[int, dict[int, float]] = defaultdict(dict)
        self.totals: defaultdict[int, float] = defaultdict(float)

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        self.popularity.learn(user, interaction)
        target = self.items.index(interaction.item_id)
        weight = self.weights[interaction.event_type]
        for d, previous in enumerate(reversed(user.window[-LEARN_SPAN:])):
            source = self.items.index(previous.item_id)
            if source == target:
                continue
            credit = weight * DECAY**d
            row = self.counts[source]
            row[target] = row.get(target, 0.0) + credit
            self.totals[source] += credit

    def update_items(self, items: Iterable[Item]) -> None:
        self.popularity.update_items(items)

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        pop = self.items.live()
        pop_part = self.blend * pop / pop.max() if len(pop) and pop.max() > 0 else np.zeros_like(pop)
        return [top_k(self._scores(user, pop_part), k, self.items.vocab, self.items.banned(user)) for user in users]

    def _scores(self, user: UserContext, pop_part: np.ndarray) -> np.ndarray:
        scores = np.zeros_like(pop_part)
        for d, recent in enumerate(reversed(user.window[-CONTEXT_SPAN:])):
            source = self.items.vocab.index(recent.item_id)
            row = self.counts.get(source) if source is not None else None
            if not row:
                continue
            idx = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            vals = np.fromiter(row.values(), dtype=np.float64, count=len(row))
            scores[idx] += (DECAY**d) * self.weights[recent.event_type] * vals / self.totals[source]
        top = scores.max() if len(scores) else 0.0
        return (scores / top if top > 0 else scores) + pop_part
