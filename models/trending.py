"""Trending: popularity that decays with *event* time, globally and per category.

Every event ``e`` adds its type weight, halved every ``h`` seconds of event time. At
event time ``t`` (the newest event seen) the trend of item ``i`` is

.. math:: T(i) = \\sum_{e \\,:\\, item(e) = i} w_{type(e)} \\; 2^{-(t - ts_e) / h}

Decay uses the events' own ``ts``, never the wall clock, so a replay of the same log
gives the same scores. Stored sums are ``w 2^{(ts - a) / h}`` for an anchor ``a``
(`EventTimeDecay`): the common factor ``2^{-(t - a)/h}`` does not change any ranking, so
an event costs O(1) instead of decaying every item.

Per-category trending personalises with the user's window: with ``r_d`` the window
weights (`models.base.window_weights`) and ``G_i`` the categories of item ``i``,

.. math::
    p_u(c) = \\frac{\\sum_d r_d [c \\in G_{j_d}]}{\\sum_d r_d}, \\quad
    s_u(i) = \\frac{T(i)}{\\max_j T(j)} \\big(\\beta + \\max_{c \\in G_i} p_u(c)\\big)

so a user with no history gets global trending (``p_u = 0``).

>>> from streamrec.types import Item
>>> model = Trending(half_life_s=10.0)
>>> model.update_items([Item("a", "A", category="Jazz"), Item("b", "B", category="Rock")])
>>> for item, ts in (("a", 0.0), ("a", 0.0), ("b", 20.0)):
...     model.learn(UserContext("u"), Interaction(item, "view", ts))
>>> model.recommend([UserContext("v")], k=2)  # a: 2 views, 20 s = 2 half-lives older
[[('b', 1.0), ('a', 0.5)]]
>>> model.explain(UserContext("w", (Interaction("b", "view", 20.0),)), [("b", 1.0)])
[{'reason': 'trending in Rock', 'source': 'trending'}]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from streamrec.models.base import Recommender, top_k, window_weights
from streamrec.models.popularity import ItemScores
from streamrec.types import EVENT_WEIGHTS, Explanation, Interaction, Item, Ranked, UserContext

DAY_S = 86_400.0
# Default half-life, 30 days of event time: the best of 1 / 7 / 30 days / no decay on
# ml-100k (docs/fusion.md); last season's hits fade, this month's count fully.
HALF_LIFE_S = 30 * DAY_S
# Move the anchor once weights reach 2**64: sums of billions of them stay far from
# float64's 2**1023 limit, and rebasing (O(stored values)) stays rare.
REBASE_EXPONENT = 64.0
# Global share beta of the per-category score: 0 would hide items outside the user's
# categories entirely; 0.25 lets a big global trend still surface.
GLOBAL_SHARE = 0.25
# Per-position decay of window weights for the category profile (newest = 1).
RECENCY = 0.9


class EventTimeDecay:
    """``weight(ts) = 2^{(ts - anchor) / h}``; ``h = None`` means no decay (weight 1).

    >>> decay = EventTimeDecay(half_life_s=2.0)
    >>> decay.weight(10.0), decay.weight(14.0), decay.weight(8.0)
    (1.0, 4.0, 0.5)
    """

    def __init__(self, half_life_s: float | None) -> None:
        if half_life_s is not None and half_life_s <= 0:
            raise ValueError(f"half-life must be positive, got {half_life_s}")
        self.half_life_s = half_life_s
        self.anchor: float | None = None

    def weight(self, ts: float) -> float:
        if self.half_life_s is None:
            return 1.0
        if self.anchor is None:
            self.anchor = ts
        return 2.0 ** ((ts - self.anchor) / self.half_life_s)

    def rebase(self, ts: float) -> float:
        """Factor to multiply every stored sum by before `weight(ts)`; 1.0 when not due.

        >>> decay = EventTimeDecay(half_life_s=1.0); _ = decay.weight(0.0)
        >>> decay.rebase(10.0), decay.rebase(100.0), decay.anchor
        (1.0, 7.888609052210118e-31, 100.0)
        """
        if self.half_life_s is None or self.anchor is None:
            return 1.0
        exponent = (ts - self.anchor) / self.half_life_s
        if exponent < REBASE_EXPONENT:
            return 1.0
        self.anchor = ts
        return 2.0**-exponent


class Categories:
    """Item -> its categories (``"Action, Drama"`` -> two), as a growable 0/1 matrix."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        self.of_item: dict[str, tuple[int, ...]] = {}

    def update_items(self, items: Iterable[Item]) -> None:
        for item in items:
            self.of_item[item.item_id] = tuple(self._add(name) for name in item.categories)

    def _add(self, name: str) -> int:
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
        return self._index[name]

    def profile(self, window: Sequence[Interaction], weights: np.ndarray) -> np.ndarray:
        """``p_u(c)``: weighted share of window events in category ``c``."""
        cats = [self.of_item.get(entry.item_id, ()) for entry in window]
        flat = np.fromiter((c for item in cats for c in item), dtype=np.int64)
        # bincount adds in window order, as a loop over the window would.
        out = np.bincount(flat, np.repeat(weights, [len(c) for c in cats]), minlength=len(self.names))
        total = weights.sum()
        return out / total if total > 0 else out

    def matrix(self, item_ids: Sequence[str]) -> np.ndarray:
        """``(len(item_ids), n_categories)`` 0/1 membership."""
        out = np.zeros((len(item_ids), len(self.names)))
        for row, item_id in enumerate(item_ids):
            out[row, list(self.of_item.get(item_id, ()))] = 1.0
        return out


class Trending(Recommender):
    """Event-time-decayed popularity, boosted in the user's recent categories."""

    name = "trending"

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        half_life_s: float | None = HALF_LIFE_S,
        global_share: float = GLOBAL_SHARE,
    ) -> None:
        self.weights = dict(EVENT_WEIGHTS if weights is None else weights)
        self.decay = EventTimeDecay(half_life_s)
        self.global_share = global_share
        self.items = ItemScores()
        self.categories = Categories()
        self._membership = np.zeros((0, 0))  # cache of categories.matrix(vocab ids)

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        factor = self.decay.rebase(interaction.ts)
        if factor != 1.0:
            self.items.scores *= factor
        idx = self.items.index(interaction.item_id)
        self.items.scores[idx] += self.weights[interaction.event_type] * self.decay.weight(interaction.ts)

    def update_items(self, items: Iterable[Item]) -> None:
        items = list(items)
        self.items.update_items(items)
        self.categories.update_items(items)
        self._membership = np.zeros((0, 0))

    def trend(self) -> np.ndarray:
        """``T(i) / max T`` over the vocabulary (zeros before any event)."""
        scores = self.items.live()
        top = scores.max() if len(scores) else 0.0
        return scores / top if top > 0 else scores.copy()

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        trend = self.trend()
        return [top_k(self.user_scores(user, trend), k, self.items.vocab, self.items.banned(user)) for user in users]

    def user_scores(self, user: UserContext, trend: np.ndarray) -> np.ndarray:
        """``s_u(i)`` over the vocabulary; plain ``trend`` when the window says nothing."""
        profile = self._profile(user)
        if not profile.any():
            return trend
        affinity = (self.membership(len(trend)) * profile).max(axis=1)
        return trend * (self.global_share + affinity)

    def membership(self, n_items: int) -> np.ndarray:
        if self._membership.shape != (n_items, len(self.categories.names)):
            self._membership = self.categories.matrix(self.items.vocab.ids[:n_items])
        return self._membership

    def top_category(self, profile: np.ndarray, item_id: str) -> str | None:
        """The item's category the user's window (``profile``) leans to most (None: no overlap)."""
        cats = self.categories.of_item.get(item_id, ())
        best = max(cats, key=lambda c: profile[c], default=None)
        return self.categories.names[best] if best is not None and profile[best] > 0 else None

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        out, profile = [], self._profile(user)
        for item_id, _ in ranked:
            category = self.top_category(profile, item_id)
            out.append({"reason": f"trending in {category}" if category else "trending now", "source": self.name})
        return out

    def _profile(self, user: UserContext) -> np.ndarray:
        return self.categories.profile(user.window, window_weights(user.window, self.weights, RECENCY))
