"""The fusion ranker's features: every source's proposals for a batch of users, their
union per user, and ``x = u \\otimes b`` per candidate (`models.fusion` gives the maths).

.. math::
    b(i) &= \\big(1,\\; \\hat s_1(i) .. \\hat s_S(i),\\; \\log_2(1 + r_1(i)) .. \\log_2(1 + r_S(i)),\\;
            \\tfrac{\\log(1 + P(i))}{\\log(1 + \\max P)},\\; \\log(1 + age_i / day)\\big) \\\\
    u &= \\big(1,\\; \\tfrac{\\log(1 + |W_u|)}{\\log(1 + W)},\\; share_{click}(W_u),\\; share_{purchase}(W_u)\\big)

with ``W`` = `streamrec.types.WINDOW`, the worker's window.

>>> proposals = Proposals.of([TopK.of([[("a", 2.0), ("b", 1.0)]]), TopK.of([[("b", 5.0)]])])  # 2 sources, 1 user
>>> proposals.item_ids, proposals.rank.tolist(), proposals.score.tolist()
(['a', 'b'], [1, 2, 1], [1.0, 0.0, 1.0])
>>> Candidates.of(proposals).row.tolist()  # "b" proposed twice: one candidate row
[0, 1, 1]
>>> from streamrec.types import Interaction
>>> user_vectors([UserContext("u", (Interaction("a", "click", 0.0),))]).round(3).tolist()
[[1.0, 0.176, 1.0, 0.0]]
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from streamrec.models.base import ItemVocab, TopK
from streamrec.models.popularity import ItemScores
from streamrec.models.trending import DAY_S
from streamrec.types import EVENT_TYPE_INDEX, EVENT_TYPES, WINDOW, UserContext


class ItemUnion:
    """One index over the items of several vocabularies: per `ItemVocab`, an array from its
    rows to union rows, extended as it grows (a vocabulary only grows, so a row's union row
    never changes and only new items cost Python work).

    >>> union, a, b = ItemUnion(), ItemVocab(["x", "y"]), ItemVocab(["y", "z"])
    >>> union.rows(a).tolist(), union.rows(b).tolist(), union.vocab.ids
    ([0, 1], [1, 2], ['x', 'y', 'z'])
    """

    def __init__(self) -> None:
        self.vocab = ItemVocab()
        # Weak keys: a vocabulary replaced by a hot reload, or made for one list, is dropped.
        self._rows: weakref.WeakKeyDictionary[ItemVocab, np.ndarray] = weakref.WeakKeyDictionary()

    def rows(self, vocab: ItemVocab) -> np.ndarray:
        """The union row of each row of ``vocab``."""
        rows = self._rows.get(vocab, np.zeros(0, np.int64))
        if len(rows) < len(vocab):
            new = np.fromiter(map(self.vocab.add, vocab.ids[len(rows) :]), np.int64, len(vocab) - len(rows))
            rows = self._rows[vocab] = np.concatenate([rows, new])
        return rows


@dataclass
class Proposals:
    """Every source's list for every user of a batch, flattened: user by user, then source
    by source, best first."""

    user: np.ndarray  # (M,) position in the batch of the user it was proposed to
    source: np.ndarray  # (M,) column of the proposing source
    rank: np.ndarray  # (M,) 1-based rank in that source's list
    score: np.ndarray  # (M,) score min-max scaled over that list (1 for a flat list)
    item: np.ndarray  # (M,) position of the proposed item in ``item_ids``
    item_ids: list[str]  # the distinct items proposed, first-proposed first

    @classmethod
    def of(cls, tops: Sequence[TopK], union: ItemUnion | None = None) -> Proposals:
        """``tops[s]``: source ``s``'s lists for the batch; ``union`` (kept across batches by
        the caller) maps each source's vocabulary to one item index."""
        union = union or ItemUnion()
        counts = np.stack([top.lengths for top in tops])  # (sources, users)
        lengths = counts.T.ravel()  # the proposals' order: user by user, then source by source
        group = np.repeat(np.arange(len(lengths)), lengths)
        place = np.arange(len(group)) - (np.cumsum(lengths) - lengths)[group]  # 0-based rank
        # Where each (user, source) list starts in the sources' entries, concatenated source by source.
        held = (np.cumsum(counts) - counts.ravel()).reshape(counts.shape).T.ravel()
        take = held[group] + place
        rows = np.concatenate([union.rows(top.vocab)[top.item] for top in tops])[take]
        score = np.concatenate([top.score for top in tops])[take]
        item, item_ids = first_proposed(rows, union.vocab)
        return cls(group // len(tops), group % len(tops), place + 1, min_max(score, lengths), item, item_ids)


def first_proposed(rows: np.ndarray, vocab: ItemVocab) -> tuple[np.ndarray, list[str]]:
    """``rows`` (of ``vocab``) renumbered by first appearance, and the ids in that order.

    >>> first_proposed(np.array([2, 0, 2, 1]), ItemVocab("abc"))
    (array([0, 1, 0, 2]), ['c', 'a', 'b'])
    """
    first = np.full(len(vocab), len(rows))
    np.minimum.at(first, rows, np.arange(len(rows)))
    distinct = np.flatnonzero(first < len(rows))
    distinct = distinct[np.argsort(first[distinct])]
    renumber = np.empty(len(vocab), np.int64)
    renumber[distinct] = np.arange(len(distinct))
    return renumber[rows], list(map(vocab.ids.__getitem__, distinct.tolist()))


@dataclass
class Candidates:
    """The union of a batch's proposals per user: one row per distinct (user, item)."""

    user: np.ndarray  # (R,) the row's user; rows come user by user, in batch order
    item: np.ndarray  # (R,) the row's item in `Proposals.item_ids`; per user, first-proposed first
    row: np.ndarray  # (M,) the row of each proposal

    @classmethod
    def of(cls, proposals: Proposals) -> Candidates:
        n_items = max(len(proposals.item_ids), 1)
        key = proposals.user * n_items + proposals.item
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        order = np.argsort(first)  # proposals come user by user, so rows do too
        row = np.empty(len(order), dtype=np.int64)
        row[order] = np.arange(len(order))
        return cls(unique[order] // n_items, unique[order] % n_items, row[inverse])


def min_max(score: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``score`` min-max scaled within each of the consecutive lists of ``lengths`` (1 where a list is flat).

    >>> min_max(np.array([3.0, 1.0, 2.0, 5.0, 5.0]), np.array([3, 0, 2])).tolist()
    [1.0, 0.0, 0.5, 1.0, 1.0]
    """
    nonempty = lengths > 0
    out = np.ones(len(score))
    if not nonempty.any():
        return out
    starts, sizes = (np.cumsum(lengths) - lengths)[nonempty], lengths[nonempty]
    low = np.repeat(np.minimum.reduceat(score, starts), sizes)
    high = np.repeat(np.maximum.reduceat(score, starts), sizes)
    np.divide(score - low, high - low, out=out, where=high > low)
    return out


def user_vectors(users: Sequence[UserContext]) -> np.ndarray:
    """``u`` per user (one row each)."""
    lengths = np.array([len(user.window) for user in users])
    types = np.fromiter((EVENT_TYPE_INDEX[e.event_type] for user in users for e in user.window), np.int64)
    owner = np.repeat(np.arange(len(users)), lengths)
    counts = np.bincount(owner * len(EVENT_TYPES) + types, minlength=len(users) * len(EVENT_TYPES))
    shares = counts.reshape(len(users), -1) / np.maximum(lengths, 1)[:, None]
    history = [math.log1p(n) / math.log1p(WINDOW) for n in lengths]
    click, purchase = EVENT_TYPE_INDEX["click"], EVENT_TYPE_INDEX["purchase"]
    return np.column_stack([np.ones(len(users)), history, shares[:, click], shares[:, purchase]])


def item_vectors(
    items: ItemScores, first_seen: Mapping[str, float], clock: float | None, item_ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled popularity and ``log(1 + age / day)`` per item (age at the newest event ``clock``)."""
    pop = np.log1p(items.live())
    pop = pop / pop.max() if len(pop) and pop.max() > 0 else pop
    rows = items.vocab.indices(item_ids)
    popularity = np.zeros(len(item_ids))
    popularity[rows >= 0] = pop[rows[rows >= 0]]
    first = np.fromiter(map(first_seen.get, item_ids, repeat(np.nan)), np.float64, len(item_ids))
    age = np.zeros(len(item_ids))
    seen = ~np.isnan(first)
    if clock is not None:
        age[seen] = np.maximum(0.0, clock - first[seen]) / DAY_S
    return popularity, np.log1p(age)


def candidate_vectors(
    proposals: Proposals,
    candidates: Candidates,
    n_sources: int,
    fetch: int,
    popularity: np.ndarray,
    log_age: np.ndarray,
) -> np.ndarray:
    """``b`` per candidate row, from ``n_sources`` sources' top-``fetch`` proposals and `item_vectors`."""
    n, s = len(candidates.item), n_sources
    # math.log2, not np.log2: the same values as scoring one candidate at a time.
    log_rank = np.array([math.log2(1 + r) for r in range(max(fetch, int(proposals.rank.max(initial=0))) + 2)])
    scores, ranks = np.zeros((n, s)), np.full((n, s), log_rank[fetch + 1])
    scores[candidates.row, proposals.source] = proposals.score
    ranks[candidates.row, proposals.source] = log_rank[proposals.rank]
    item = candidates.item
    return np.column_stack([np.ones(n), scores, ranks, popularity[item], log_age[item]])
