"""The recommender contract every model implements, online (worker) and offline (evaluation).

Uniform verbs, river-style:

- ``learn(user, interaction)``: observe that ``user`` (whose ``window`` is what came
  *before*) did ``interaction``; updates item-side statistics.
- ``recommend(users, k)``: top-``k`` ``(item_id, score)`` per user, best first, never
  an item in ``user.exclude`` nor an unavailable item. Batched, because the worker
  scores a whole micro-batch of users at once.
- ``update_items(items)``: catalog changes (new items, availability).

>>> from streamrec.models.popularity import Popularity
>>> from streamrec.types import Interaction, UserContext
>>> model = Popularity()
>>> for item in ("a", "b", "b", "c"):
...     model.learn(UserContext("u"), Interaction(item, "view", 0.0))
>>> model.recommend([UserContext("v", exclude=frozenset({"b"}))], k=2)
[[('a', 1.0), ('c', 1.0)]]
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any, ClassVar

import numpy as np

from streamrec.types import Explanation, Interaction, Item, Ranked, UserContext

# Users scored per dense (users x items) score matrix: batched numpy work without the
# matrix outgrowing memory (64 users x 100k items x 8 B = 51 MB).
USER_CHUNK = 64


def window_weights(window: Sequence[Interaction], weights: Mapping[str, float], recency: float) -> np.ndarray:
    """Weight of each window entry (oldest first): ``w_type * recency**d``, ``d`` = 0 for the newest.

    >>> from streamrec.types import EVENT_WEIGHTS
    >>> window_weights([Interaction("a", "purchase", 0), Interaction("b", "view", 1)], EVENT_WEIGHTS, 0.5).tolist()
    [2.0, 1.0]
    """
    age = np.arange(len(window) - 1, -1, -1, dtype=np.float64)
    return np.array([weights[e.event_type] for e in window], dtype=np.float64) * recency**age


class Recommender(abc.ABC):
    """Base class: a ranked list of items per user."""

    name: ClassVar[str]
    # Attributes holding the item-side statistics: what `learn` built from every
    # partition's events, and what serving adds (a re-ranker's exposure).
    ITEM_STATE: ClassVar[tuple[str, ...]] = ()

    @property
    def version(self) -> str:
        """What the ``model`` field of a published list says: name, plus version if any."""
        return self.name

    def learn(self, user: UserContext, interaction: Interaction) -> None:  # noqa: B027 - optional
        """Observe one event; default: the model has no streaming item-side state."""

    def update_items(self, items: Iterable[Item]) -> None:  # noqa: B027 - optional
        """Catalog changes; default: nothing to do."""

    def embed(self, users: Sequence[UserContext]) -> np.ndarray | None:
        """User vectors (one row per user) for models that have them; default: None."""
        return None

    def item_state(self) -> dict[str, Any]:
        """The item-side statistics (`ITEM_STATE`), the objects themselves: what a checkpoint
        pickles and a hot-reloaded model takes over, so that no learning log is kept to replay."""
        return {name: getattr(self, name) for name in self.ITEM_STATE}

    def load_item_state(self, state: Mapping[str, Any]) -> None:
        """Take over the `item_state` of a model built the same way (kind and settings);
        catalog updates may follow (they are idempotent)."""
        for name in self.ITEM_STATE:
            setattr(self, name, state[name])

    def carry_over(self, previous: Recommender) -> None:
        """Hot reload: take over the item-side statistics of ``previous``, the model this one
        replaces, if it is of the same kind (a new artifact changes no item statistic)."""
        if type(previous) is type(self):
            self.load_item_state(previous.item_state())

    @abc.abstractmethod
    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        """Top-``k`` items per user, best first."""

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        """Per item of ``ranked`` (a list this model made for ``user``): ``{"reason", "source"}``;
        default: empty dicts (the model cannot say why)."""
        return [{} for _ in ranked]

    def explain_all(self, users: Sequence[UserContext], lists: Sequence[Ranked]) -> list[list[Explanation]]:
        """`explain` for a whole batch (what the worker calls); models batch the work where they can."""
        return [self.explain(user, ranked) for user, ranked in zip(users, lists, strict=True)]


class ItemVocab:
    """Stable item_id <-> dense index mapping that only grows.

    >>> vocab = ItemVocab(["a", "b"])
    >>> vocab.add("c"), vocab.index("b"), vocab.ids[2], vocab.indices(["c", "x"]).tolist()
    (2, 1, 'c', [2, -1])
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.ids: list[str] = []
        self._index: dict[str, int] = {}
        for item_id in ids:
            self.add(item_id)

    def add(self, item_id: str) -> int:
        idx = self._index.get(item_id)
        if idx is None:
            idx = self._index[item_id] = len(self.ids)
            self.ids.append(item_id)
        return idx

    def index(self, item_id: str) -> int | None:
        return self._index.get(item_id)

    def indices(self, item_ids: Iterable[str]) -> np.ndarray:
        """`index` of each id, -1 for unknown ones."""
        return np.fromiter(map(self._index.get, item_ids, repeat(-1)), dtype=np.int64)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def __len__(self) -> int:
        return len(self.ids)


def top_k(scores: np.ndarray, k: int, vocab: ItemVocab, banned: Iterable[int]) -> Ranked:
    """Top-``k`` of a dense score vector, skipping banned indices (scores is not modified)."""
    return top_k_rows(scores[None, :], k, vocab, [list(banned)])[0]


def top_k_chunked(
    users: Sequence[UserContext],
    k: int,
    vocab: ItemVocab,
    scores: Callable[[Sequence[UserContext]], np.ndarray],
    banned: Callable[[UserContext], list[int]],
) -> list[Ranked]:
    """`top_k_rows` of ``scores(chunk)`` (one row per user), `USER_CHUNK` users at a time."""
    out: list[Ranked] = []
    for start in range(0, len(users), USER_CHUNK):
        chunk = users[start : start + USER_CHUNK]
        out += top_k_rows(scores(chunk), k, vocab, [banned(user) for user in chunk])
    return out


def top_k_rows(scores: np.ndarray, k: int, vocab: ItemVocab, banned: Sequence[Sequence[int]]) -> list[Ranked]:
    """`top_k` of every row of a ``(users, items)`` matrix, row ``u`` skipping ``banned[u]``,
    in a few whole-matrix numpy calls; ties go to the older item (lower index), also at
    the k-th place (``scores`` is not modified).

    >>> vocab = ItemVocab("abcd")
    >>> top_k_rows(np.array([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]]), 2, vocab, [[1], []])
    [[('c', 3.0), ('d', 2.0)], [('a', 0.0), ('b', 0.0)]]
    """
    scores = np.array(scores, dtype=np.float64)  # a copy: banned items are set to -inf
    n_users, n_items = scores.shape
    owner = np.repeat(np.arange(n_users), [len(b) for b in banned])
    cols = np.fromiter(chain.from_iterable(banned), np.int64, len(owner))
    inside = cols < n_items
    scores[owner[inside], cols[inside]] = -np.inf
    counts = np.minimum(k, np.isfinite(scores).sum(axis=1))
    width = int(counts.max(initial=0))
    if width <= 0:
        return [[] for _ in range(n_users)]
    # Everything at least as good as each row's width-th score (ties included), then
    # ordered by (-score, index): the first `width` per row are the exact top.
    threshold = -np.partition(-scores, width - 1, axis=1)[:, width - 1]
    rows, idx = np.nonzero(scores >= threshold[:, None])
    top = scores[rows, idx]
    order = np.lexsort((idx, -top, rows))
    starts = np.searchsorted(rows[order], np.arange(n_users))
    ids, ranked = vocab.ids, []
    for start, n in zip(starts.tolist(), counts.tolist(), strict=True):
        chosen = order[start : start + n]
        ranked.append(list(zip(map(ids.__getitem__, idx[chosen].tolist()), top[chosen].tolist(), strict=True)))
    return ranked
