"""The recommender contract every model implements, online (worker) and offline (evaluation).

Uniform verbs, river-style:

- ``learn(user, interaction)``: observe that ``user`` (whose ``window`` is what came
  *before*) did ``interaction``; updates item-side statistics.
- ``recommend(users, k)``: top-``k`` ``(item_id, score)`` per user, best first, never
  an item in ``user.exclude`` nor an unavailable item. Batched, because the worker
  scores a whole micro-batch of users at once.
- ``recommend_arrays(users, k)``: the same lists as one `TopK` (flat numpy arrays), what
  a consumer of many lists (the fusion) reads without a tuple per item. Every model has
  it; an `ArrayRecommender` makes it natively and derives ``recommend`` from it.
- ``update_items(items)``: catalog changes (new items, availability).

>>> from streamrec.models.popularity import Popularity
>>> from streamrec.types import Interaction, UserContext
>>> model = Popularity()
>>> for item in ("a", "b", "b", "c"):
...     model.learn(UserContext("u"), Interaction(item, "view", 0.0))
>>> model.recommend([UserContext("v", exclude=frozenset({"b"}))], k=2)
[[('a', 1.0), ('c', 1.0)]]
>>> top = model.recommend_arrays([UserContext("v", exclude=frozenset({"b"})), UserContext("w")], k=2)
>>> top.item.tolist(), top.lengths.tolist(), top.score.tolist()  # "b" is row 1 of the vocabulary
([0, 2, 1, 0], [2, 2], [1.0, 1.0, 2.0, 1.0])
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, chain, pairwise, repeat
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

    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        """`recommend` as one `TopK`; default: made from `recommend`'s lists."""
        return TopK.of(self.recommend(users, k))

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        """Per item of ``ranked`` (a list this model made for ``user``): ``{"reason", "source"}``;
        default: empty dicts (the model cannot say why)."""
        return [{} for _ in ranked]

    def explain_all(self, users: Sequence[UserContext], lists: Sequence[Ranked]) -> list[list[Explanation]]:
        """`explain` for a whole batch (what the worker calls); models batch the work where they can."""
        return [self.explain(user, ranked) for user, ranked in zip(users, lists, strict=True)]


class ArrayRecommender(Recommender):
    """A recommender whose lists are arrays first: subclasses implement `recommend_arrays`
    (not `recommend`, which is its `TopK.lists`)."""

    @abc.abstractmethod
    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        """Top-``k`` items per user, best first, as one `TopK`."""

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        return self.recommend_arrays(users, k).lists()


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


@dataclass(frozen=True, eq=False)
class TopK:
    """The ranked lists of a batch of users as flat arrays: user ``u``'s list is entries
    ``o_u .. o_u + lengths[u] - 1`` of ``item`` (rows of ``vocab``, which only grows, so
    rows stay valid) and ``score``, best first, with ``o_u = \\sum_{v < u} lengths[v]``.

    >>> top = TopK.of([[("a", 2.0), ("b", 1.0)], [], [("b", 0.5)]])
    >>> top.vocab.ids, top.item.tolist(), top.lengths.tolist(), top.score.tolist()
    (['a', 'b'], [0, 1, 1], [2, 0, 1], [2.0, 1.0, 0.5])
    >>> top.lists()
    [[('a', 2.0), ('b', 1.0)], [], [('b', 0.5)]]
    >>> top.spread(np.array([0, 2, 3]), 4).lists()
    [[('a', 2.0), ('b', 1.0)], [], [], [('b', 0.5)]]
    """

    vocab: ItemVocab
    item: np.ndarray  # (M,) int64 rows of `vocab`
    lengths: np.ndarray  # (users,) int64 list lengths
    score: np.ndarray  # (M,) float64

    @classmethod
    def of(cls, lists: Sequence[Ranked]) -> TopK:
        """``lists`` as arrays, over a vocabulary of their items (first listed first)."""
        vocab = ItemVocab()
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        n = int(lengths.sum())
        item = np.fromiter(map(vocab.add, (i for ranked in lists for i, _ in ranked)), np.int64, n)
        return cls(vocab, item, lengths, np.fromiter((s for ranked in lists for _, s in ranked), np.float64, n))

    @classmethod
    def empty(cls, vocab: ItemVocab, users: int) -> TopK:
        """``users`` empty lists."""
        return cls(vocab, np.zeros(0, np.int64), np.zeros(users, np.int64), np.zeros(0))

    @classmethod
    def join(cls, vocab: ItemVocab, parts: Sequence[TopK]) -> TopK:
        """The lists of consecutive batches of users, all over ``vocab``, as one."""
        if not parts:
            return cls.empty(vocab, 0)
        if any(part.vocab is not vocab for part in parts):
            raise ValueError("TopK.join needs parts over one vocabulary")
        return cls(
            vocab,
            np.concatenate([p.item for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.score for p in parts]),
        )

    def __len__(self) -> int:
        """Number of users."""
        return len(self.lengths)

    def spread(self, users: np.ndarray, n_users: int) -> TopK:
        """List ``n`` as user ``users[n]``'s (``users`` increasing) of ``n_users``, the others empty."""
        lengths = np.zeros(n_users, np.int64)
        lengths[users] = self.lengths
        return replace(self, lengths=lengths)

    def lists(self) -> list[Ranked]:
        """The ``(item_id, score)`` lists: the one place arrays become tuples."""
        # tolist: Python numbers made in C, not one numpy scalar per entry.
        pairs = list(zip(map(self.vocab.ids.__getitem__, self.item.tolist()), self.score.tolist(), strict=True))
        return [pairs[start:end] for start, end in pairwise(accumulate(self.lengths.tolist(), initial=0))]


def top_k(scores: np.ndarray, k: int, vocab: ItemVocab, banned: Iterable[int]) -> Ranked:
    """Top-``k`` of a dense score vector, skipping banned indices (scores is not modified)."""
    return top_k_rows(scores[None, :], k, vocab, [list(banned)]).lists()[0]


def top_k_chunked(
    users: Sequence[UserContext],
    k: int,
    vocab: ItemVocab,
    scores: Callable[[Sequence[UserContext]], np.ndarray],
    banned: Callable[[UserContext], list[int]],
) -> TopK:
    """`top_k_rows` of ``scores(chunk)`` (one row per user), `USER_CHUNK` users at a time."""
    chunks = (users[start : start + USER_CHUNK] for start in range(0, len(users), USER_CHUNK))
    return TopK.join(vocab, [top_k_rows(scores(chunk), k, vocab, [banned(user) for user in chunk]) for chunk in chunks])


def top_k_rows(scores: np.ndarray, k: int, vocab: ItemVocab, banned: Sequence[Sequence[int]]) -> TopK:
    """`top_k` of every row of a ``(users, items)`` matrix, row ``u`` skipping ``banned[u]``,
    in a few whole-matrix numpy calls; ties go to the older item (lower index), also at
    the k-th place (``scores`` is not modified).

    >>> vocab = ItemVocab("abcd")
    >>> top_k_rows(np.array([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]]), 2, vocab, [[1], []]).lists()
    [[('c', 3.0), ('d', 2.0)], [('a', 0.0), ('b', 0.0)]]
    """
    scores = np.array(scores, dtype=np.float64)  # a copy: banned items are set to -inf
    n_users, n_items = scores.shape
    owner = np.repeat(np.arange(n_users), [len(b) for b in banned])
    cols = np.fromiter(chain.from_iterable(banned), np.int64, len(owner))
    inside = cols < n_items
    scores[owner[inside], cols[inside]] = -np.inf
    counts = np.minimum(k, np.isfinite(scores).sum(axis=1)).astype(np.int64)
    width = int(counts.max(initial=0))
    if width <= 0:
        return TopK.empty(vocab, n_users)
    # Everything at least as good as each row's width-th score (ties included), then
    # ordered by (-score, index): the first `width` per row are the exact top.
    threshold = -np.partition(-scores, width - 1, axis=1)[:, width - 1]
    rows, idx = np.nonzero(scores >= threshold[:, None])
    top = scores[rows, idx]
    order = np.lexsort((idx, -top, rows))
    owner = rows[order]  # non-decreasing
    place = np.arange(len(order)) - np.searchsorted(owner, owner)  # 0-based place in its row
    chosen = order[place < counts[owner]]
    return TopK(vocab, idx[chosen].astype(np.int64, copy=False), counts, top[chosen])
