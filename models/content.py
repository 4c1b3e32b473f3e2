"""Content similarity: items whose text is close to what the user met recently.

With ``e(i)`` the unit text vector of item ``i`` (`models.text_encoder.TextEncoder`, or
the artifact's stored ``item_text``) and ``r_d`` the window weights (event type times
recency, `models.base.window_weights`), the user's profile and an item's score are

.. math::
    q_u = \\frac{\\sum_d r_d \\, e(j_d)}{\\|\\sum_d r_d \\, e(j_d)\\|_2}, \\quad s_u(i) = q_u \\cdot e(i)

(cosine, as ``e(i)`` is unit-norm), retrieved exactly with FAISS (`models.retrieval.ItemIndex`).
Items announced through `update_items` are encoded from their text on arrival, so a new
item is recommendable before anyone touched it. Users without known window items get
an empty list (the fusion's fallback chain handles them).

>>> import numpy as np
>>> from streamrec.types import Item
>>> model = Content(vectors=(["jazz1", "jazz2", "rock"], np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)))
>>> user = UserContext("u", (Interaction("jazz1", "click", 0.0),), frozenset({"jazz1"}))
>>> [i for i, _ in model.recommend([user], k=2)[0]]
['jazz2', 'rock']
>>> model.anchor(user, "jazz2")
Interaction(item_id='jazz1', event_type='click', ts=0.0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from streamrec.models.base import ArrayRecommender, ItemVocab, TopK, window_weights
from streamrec.models.retrieval import ItemIndex
from streamrec.models.text_encoder import TextEncoder
from streamrec.types import EVENT_WEIGHTS, Interaction, Item, UserContext

# Per-position decay of the profile weights: the newest item counts 1, ten items back ~0.35.
RECENCY = 0.9
# Only the newest items shape the profile; older ones are already faint at RECENCY**20 ~ 0.12.
SPAN = 20


class Content(ArrayRecommender):
    """Cosine between item texts and a recency-weighted profile of the user's window."""

    name = "content"

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        vectors: tuple[Sequence[str], np.ndarray] | None = None,
        encode: Callable[[list[Item]], np.ndarray] | None = None,
    ) -> None:
        """``vectors``: known ``(item_ids, unit text vectors)``; ``encode`` embeds other new
        items (default: a `TextEncoder`, loaded on first use)."""
        self.weights = dict(EVENT_WEIGHTS if weights is None else weights)
        self._encode = encode
        self.index: ItemIndex | None = None
        if vectors is not None:
            self._add(list(vectors[0]), vectors[1])

    def encode(self, items: list[Item]) -> np.ndarray:
        if self._encode is None:
            self._encode = TextEncoder().encode_items
        return self._encode(items)

    def update_items(self, items: Iterable[Item]) -> None:
        items = list(items)
        new = [item for item in items if self.index is None or item.item_id not in self.index.vocab]
        if new:
            self._add([item.item_id for item in new], self.encode(new))
        if self.index is None:  # no items at all yet
            return
        for item in items:
            self.index.set_available(item.item_id, item.available)

    def profile(self, user: UserContext) -> np.ndarray | None:
        """``q_u``, or None when no window item has a text vector."""
        known = [(e, v) for e in user.window[-SPAN:] if (v := self.vector(e.item_id)) is not None]
        if not known:
            return None
        weights = window_weights([e for e, _ in known], self.weights, RECENCY)
        mean = weights @ np.stack([v for _, v in known])
        norm = np.linalg.norm(mean)
        return mean / norm if norm > 0 else None

    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        if self.index is None:  # no item vectors yet, so no profiles
            return TopK.empty(ItemVocab(), len(users))
        known = [(n, q) for n, user in enumerate(users) if (q := self.profile(user)) is not None]
        if not known:
            return TopK.empty(self.index.vocab, len(users))
        found = self.index.search_arrays(np.stack([q for _, q in known]), k, [users[n].exclude for n, _ in known])
        return found.spread(np.array([n for n, _ in known], np.int64), len(users))

    def vector(self, item_id: str) -> np.ndarray | None:
        return None if self.index is None else self.index.vector(item_id)

    def anchor(self, user: UserContext, item_id: str) -> Interaction | None:
        """The window item whose text is closest to ``item_id``'s (None: no vectors)."""
        return closest(self.index, user.window, [item_id])[0] if self.index is not None else None

    def _add(self, item_ids: list[str], vectors: np.ndarray) -> None:
        if self.index is None:
            self.index = ItemIndex(vectors.shape[1])
        self.index.add(item_ids, vectors)


def closest(index: ItemIndex, window: Sequence[Interaction], item_ids: Sequence[str]) -> list[Interaction | None]:
    """Per item: the recent window entry (last `SPAN`) whose vector in ``index`` has the
    largest inner product with the item's, never the item itself (the earliest on ties);
    None if either has no vector."""
    return closest_many(index, [window], [item_ids])[0]


def closest_many(
    index: ItemIndex, windows: Sequence[Sequence[Interaction]], item_lists: Sequence[Sequence[str]]
) -> list[list[Interaction | None]]:
    """`closest` for several (window, items) pairs: one batched product for all of them.

    >>> index = ItemIndex(2)
    >>> index.add(["a", "b", "c"], np.array([[1, 0], [0.8, 0.2], [0, 1]], np.float32))
    >>> w = (Interaction("a", "view", 0.0), Interaction("c", "click", 1.0))
    >>> [[e.item_id if e else None for e in found] for found in closest_many(index, [w, w[:1]], [["b", "c"], ["a", "x"]])]
    [['a', 'a'], [None, None]]
    """
    out: list[list[Interaction | None]] = [[None] * len(items) for items in item_lists]
    recent = [window[-SPAN:] for window in windows]
    width, height = max(map(len, recent), default=0), max(map(len, item_lists), default=0)
    if not len(index.vocab) or not width or not height:
        return out
    rows = np.full((len(recent), width), -1, dtype=np.int64)  # -1: padding, or no vector
    targets = np.full((len(recent), height), -1, dtype=np.int64)
    for n, (entries, items) in enumerate(zip(recent, item_lists, strict=True)):
        rows[n, : len(entries)] = index.vocab.indices(e.item_id for e in entries)
        targets[n, : len(items)] = index.vocab.indices(items)
    vectors = index.vectors
    similarity = np.matmul(vectors[targets.clip(0)], np.swapaxes(vectors[rows.clip(0)], 1, 2))
    # An item met twice scores as its first entry: an exact tie, which goes to the earliest
    # (one product can round equal columns apart).
    first = (rows[:, :, None] == rows[:, None, :]).argmax(axis=2)
    similarity = np.take_along_axis(similarity, np.broadcast_to(first[:, None, :], similarity.shape), axis=2)
    similarity[(rows[:, None, :] < 0) | (targets[:, :, None] == rows[:, None, :])] = -np.inf
    best = similarity.argmax(axis=2)
    for n, j in zip(*np.nonzero(targets >= 0), strict=True):
        if similarity[n, j, best[n, j]] > -np.inf:
            out[n][j] = recent[n][best[n, j]]
    return out
