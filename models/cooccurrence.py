"""Streaming item co-occurrence: items that tend to follow the user's recent items.

Learning: when a user does item ``i`` after window items ``j_1..j_L`` (newest first),

.. math:: C[j_d, i] \\mathrel{+}= w_{type(i)} \\cdot \\gamma^{d-1}, \\quad d = 1..L

Scoring a user with recent items ``j_1..j_M`` (newest first), popularity ``P``:

.. math:: s(i) = \\frac{\\sum_d \\gamma^{d-1} w_{type(j_d)} C[j_d, i] / \\|C[j_d]\\|_1}{\\max_i(\\cdot)}
          + \\beta \\frac{P(i)}{\\max_i P(i)}

so users with no history (or only never-followed items) fall back to popularity.

With a half-life ``h`` (seconds of *event* time), every credit, and the popularity
``P``, is also weighted ``2^{-(t - ts)/h}`` (`models.trending.EventTimeDecay`): what
followed an item last week counts more than what followed it last year. Rows are
normalised by ``\\|C[j]\\|_1``, so the decay changes the mix of a row, not its scale.
``h = None`` (the default) is the undecayed model.

>>> model = CoOccurrence(half_life_s=10.0)
>>> for item, ts in (("x", 0), ("old", 1), ("x", 50), ("new", 51)):  # without decay: a tie
...     before = (Interaction("x", "view", ts - 1),) if item != "x" else ()
...     model.learn(UserContext("u", before), Interaction(item, "view", ts))
>>> [i for i, _ in model.recommend([UserContext("v", (Interaction("x", "view", 60),), frozenset({"x"}))], 2)[0]]
['new', 'old']
>>> model.anchor(UserContext("v", (Interaction("x", "click", 60),)), "new")
Interaction(item_id='x', event_type='click', ts=60)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from streamrec.models.base import ArrayRecommender, TopK, top_k_chunked
from streamrec.models.popularity import ItemScores
from streamrec.models.trending import EventTimeDecay, Trending
from streamrec.types import EVENT_WEIGHTS, Interaction, Item, UserContext

# How many earlier window items an event is credited to, and how fast credit decays.
LEARN_SPAN = 3
CONTEXT_SPAN = 5
DECAY = 0.6
# Weight of (normalised) popularity in the blend; also the tie-breaker between neighbours.
POPULARITY_BLEND = 0.1


class CoOccurrence(ArrayRecommender):
    """Next-item co-occurrence blended with popularity."""

    name = "cooccurrence"
    ITEM_STATE = ("popularity", "counts", "totals")

    def __init__(
        self, weights: dict[str, float] | None = None, blend: float = POPULARITY_BLEND, half_life_s: float | None = None
    ) -> None:
        self.weights = dict(EVENT_WEIGHTS if weights is None else weights)
        # Trending without decay is plain popularity; with it, popularity decays like C.
        self.popularity = Trending(self.weights, half_life_s)
        self.blend = blend
        self.counts: defaultdict[int, dict[int, float]] = defaultdict(dict)
        self.totals: defaultdict[int, float] = defaultdict(float)
        # Rows of `counts` as arrays, made when first scored after a change: a popular
        # item's row is in many users' windows, and converting it per user dominated scoring.
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def decay(self) -> EventTimeDecay:
        return self.popularity.decay

    @property
    def items(self) -> ItemScores:
        return self.popularity.items

    def load_item_state(self, state: Mapping[str, Any]) -> None:
        super().load_item_state(state)
        self._arrays = {}

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        factor = self.decay.rebase(interaction.ts)
        if factor != 1.0:
            self._scale(factor)
        self.popularity.learn(user, interaction)
        target = self.items.index(interaction.item_id)
        weight = self.weights[interaction.event_type] * self.decay.weight(interaction.ts)
        for d, previous in enumerate(reversed(user.window[-LEARN_SPAN:])):
            source = self.items.index(previous.item_id)
            if source == target:
                continue
            credit = weight * DECAY**d
            row = self.counts[source]
            row[target] = row.get(target, 0.0) + credit
            self.totals[source] += credit
            self._arrays.pop(source, None)

    def update_items(self, items: Iterable[Item]) -> None:
        self.popularity.update_items(items)

    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        scores = partial(self._scores, pop_part=self.blend * self.popularity.trend())
        return top_k_chunked(users, k, self.items.vocab, scores, self.items.banned)

    def _scores(self, users: Sequence[UserContext], pop_part: np.ndarray) -> np.ndarray:
        """``s(i)`` per user (one row each): every user's weighted rows summed by one `np.bincount`,
        which adds in the order a loop over each user's rows would."""
        n_items = len(pop_part)
        keys, credits = [np.zeros(0, np.int64)], [np.zeros(0)]
        for n, user in enumerate(users):
            for _, weight, source in self._rows(user):
                idx, vals = self._row_arrays(source)
                keys.append(idx + n * n_items)
                credits.append(weight * vals)
        size = len(users) * n_items
        scores = np.bincount(np.concatenate(keys), np.concatenate(credits), minlength=size).reshape(len(users), -1)
        scores = scores.astype(np.float64, copy=False)  # bincount of nothing is int
        top = scores.max(axis=1, initial=0.0)
        positive = top > 0
        scores[positive] /= top[positive, None]
        return scores + pop_part

    def anchor(self, user: UserContext, item_id: str) -> Interaction | None:
        """The recent window item that contributes most to ``item_id``'s score (None: none does)."""
        target = self.items.vocab.index(item_id)
        if target is None:
            return None
        contributions = [(weight * self.counts[j].get(target, 0.0), recent) for recent, weight, j in self._rows(user)]
        best = max(contributions, key=lambda c: c[0], default=(0.0, None))
        return best[1] if best[0] > 0 else None

    def _rows(self, user: UserContext) -> Iterator[tuple[Interaction, float, int]]:
        """``(j_d, gamma^{d-1} w_type(j_d) / ||C[j_d]||_1, row of j_d)`` for recent items with a row."""
        for d, recent in enumerate(reversed(user.window[-CONTEXT_SPAN:])):
            source = self.items.vocab.index(recent.item_id)
            if source is not None and self.counts.get(source):
                yield recent, (DECAY**d) * self.weights[recent.event_type] / self.totals[source], source

    def _row_arrays(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """``counts[source]`` as (targets, credits) arrays."""
        arrays = self._arrays.get(source)
        if arrays is None:
            row = self.counts[source]
            targets = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            arrays = self._arrays[source] = targets, np.fromiter(row.values(), dtype=np.float64, count=len(row))
        return arrays

    def _scale(self, factor: float) -> None:
        """Multiply every stored sum (credits and popularity) by ``factor``: the decay moved its anchor."""
        self._arrays.clear()
        self.items.scores *= factor
        for row in self.counts.values():
            for target in row:
                row[target] *= factor
        for source in self.totals:
            self.totals[source] *= factor
