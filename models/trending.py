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
from functools import partial
from typing import Any

import numpy as np

from streamrec.models.base import ArrayRecommender, TopK, top_k_chunked, window_weights
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
    """Item -> its categories (``"Action, Drama"`` -> two), and per-user profiles over them."""

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

    def profiles(self, windows: Sequence[Sequence[Interaction]], weights: Sequence[np.ndarray]) -> np.ndarray:
        """``p_u`` of several users at once: ``(len(windows), n_categories)``.

        >>> cats = Categories(); cats.update_items([Item("a", "A", category="X, Y"), Item("b", "B", category="Y")])
        >>> cats.profiles([[Interaction("a", "view", 0)], [Interaction("b", "view", 0)], []], [np.ones(1)] * 2 + [np.ones(0)])
        array([[1., 1.],
               [0., 1.],
               [0., 0.]])
        """
        cats = [self.of_item.get(entry.item_id, ()) for window in windows for entry in window]
        owner = np.repeat(np.arange(len(windows)), [len(window) for window in windows])
        sizes = [len(c) for c in cats]
        flat = np.fromiter((c for item in cats for c in item), dtype=np.int64, count=sum(sizes))
        n = len(self.names)
        # bincount adds in window order, as a loop over each window would.
        w = np.concatenate([*weights, np.zeros(0)])
        keys = np.repeat(owner, sizes) * n + flat
        counts = np.bincount(keys, np.repeat(w, sizes), minlength=len(windows) * n)
        out = counts.reshape(len(windows), n).astype(np.float64, copy=False)  # bincount of nothing is int
        totals = np.array([user_weights.sum() for user_weights in weights])
        positive = totals > 0
        out[positive] /= totals[positive, None]
        return out

    def members(self, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The items' categories flattened, and where each item's start (CSR); an item
        without any points at an extra column ``n_categories`` (a profile's padding).

        >>> cats = Categories(); cats.update_items([Item("a", "A", category="X, Y"), Item("b", "B")])
        >>> [m.tolist() for m in cats.members(["a", "b"])]
        [[0, 1, 2], [0, 2]]
        """
        cats = [self.of_item.get(item_id, ()) or (len(self.names),) for item_id in item_ids]
        starts = np.cumsum([0, *(len(c) for c in cats[:-1])]) if cats else np.zeros(0, dtype=np.int64)
        return np.fromiter((c for item in cats for c in item), dtype=np.int64), starts


class Trending(ArrayRecommender):
    """Event-time-decayed popularity, boosted in the user's recent categories."""

    name = "trending"
    ITEM_STATE = ("items", "decay", "categories")

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
        self._members: tuple[np.ndarray, np.ndarray] | None = None  # cache of `members`

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        factor = self.decay.rebase(interaction.ts)
        if factor != 1.0:
            self.items.scores *= factor
        idx = self.items.index(interaction.item_id)
        self.items.scores[idx] += self.weights[interaction.event_type] * self.decay.weight(interaction.ts)

    def load_item_state(self, state: Mapping[str, Any]) -> None:
        super().load_item_state(state)
        self._members = None

    def update_items(self, items: Iterable[Item]) -> None:
        items = list(items)
        self.items.update_items(items)
        self.categories.update_items(items)
        self._members = None

    def trend(self) -> np.ndarray:
        """``T(i) / max T`` over the vocabulary (zeros before any event)."""
        scores = self.items.live()
        top = scores.max() if len(scores) else 0.0
        return scores / top if top > 0 else scores.copy()

    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        scores = partial(self.user_scores, trend=self.trend())
        return top_k_chunked(users, k, self.items.vocab, scores, self.items.banned)

    def user_scores(self, users: Sequence[UserContext], trend: np.ndarray) -> np.ndarray:
        """``s_u(i)`` over the vocabulary, one row per user; plain ``trend`` where the window says nothing.

        ``max_{c in G_i} p_u(c)`` for the whole batch: the profiles gathered at every
        (item, category) pair, then a max per item (`Categories.members`).
        """
        profiles = self.profiles(users)
        out = np.tile(trend, (len(users), 1))
        personal = profiles.any(axis=1)
        if personal.any():
            flat, starts = self.members(len(trend))
            padded = np.hstack([profiles[personal], np.zeros((int(personal.sum()), 1))])  # column of "no category"
            affinity = np.maximum.reduceat(padded[:, flat], starts, axis=1) if len(starts) else padded[:, :0]
            out[personal] = trend * (self.global_share + affinity)
        return out

    def members(self, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        """`Categories.members` of the vocabulary, cached until the catalog changes."""
        if self._members is None or len(self._members[1]) != n_items:
            self._members = self.categories.members(self.items.vocab.ids[:n_items])
        return self._members

    def profiles(self, users: Sequence[UserContext]) -> np.ndarray:
        """``p_u`` per user (one row each)."""
        weights = [window_weights(user.window, self.weights, RECENCY) for user in users]
        return self.categories.profiles([user.window for user in users], weights)

    def top_category(self, profile: np.ndarray, item_id: str) -> str | None:
        """The item's category the user's window (``profile``) leans to most (None: no overlap)."""
        cats = self.categories.of_item.get(item_id, ())
        best = max(cats, key=lambda c: profile[c], default=None)
        return self.categories.names[best] if best is not None and profile[best] > 0 else None

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        return self.explain_all([user], [ranked])[0]

    def explain_all(self, users: Sequence[UserContext], lists: Sequence[Ranked]) -> list[list[Explanation]]:
        out = []
        for profile, ranked in zip(self.profiles(users), lists, strict=True):
            categories = [self.top_category(profile, item_id) for item_id, _ in ranked]
            out.append(
                [{"reason": f"trending in {c}" if c else "trending now", "source": self.name} for c in categories]
            )
        return out
