"""Fusion ranker: candidates from several live sources, ranked by a logistic regression.

**Candidates.** Each source ``s`` (transformer retrieval, time-decayed co-occurrence,
content similarity, trending; all updated through ``learn``/``update_items``) proposes
its top ``F`` items; the candidates of a user are the union ``C_u``.

**Features** of a candidate ``i`` for user ``u`` are the outer product ``x = u \\otimes b``
of a user part and a candidate part (so user traits such as history length can change
how much each source is trusted, which a linear model over ``b`` alone could not):

.. math::
    b(i) &= \\big(1,\\; \\hat s_1(i) .. \\hat s_S(i),\\; \\log_2(1 + r_1(i)) .. \\log_2(1 + r_S(i)),\\;
            \\tfrac{\\log(1 + P(i))}{\\log(1 + \\max P)},\\; \\log(1 + age_i / day)\\big) \\\\
    u &= \\big(1,\\; \\tfrac{\\log(1 + |W_u|)}{\\log(1 + 50)},\\; share_{click}(W_u),\\; share_{purchase}(W_u)\\big)

with ``\\hat s`` the source's score min-max scaled over its own list (0 when the source
did not propose ``i``), ``r`` its 1-based rank (``F + 1`` when missing), ``P`` the
event-weighted interaction count and ``age`` the event time since the item was first
seen (announced or interacted with).

**Ranking** is by the logit ``z(i) = \\theta \\cdot (x(i) - \\mu) / \\sigma``. ``\\theta`` is
fitted offline (`fit`) by L2-regularised logistic regression (Newton/IRLS, numpy) on
logged positions: for each user, the window before an event, label 1 for the item of
the event and 0 for every other candidate (users whose item is no candidate are
skipped: they say nothing about the order). Weights live in ``<model_dir>/fusion.json``;
without that file the ranker is CombSUM (``\\theta`` = 1 on each ``\\hat s``, 0 elsewhere).

**Fallback chain** for a user with an empty window (or too few candidates): trending
items with a positive trend, then the newest items of the catalog (latest first
announced or interacted with), so a non-empty catalog always yields ``k`` items.

**Explanations** (`Fusion.explain`): each item is credited to the source whose terms
(score and rank) add most to its logit, and says why: "because you clicked <title>"
(the window item nearest to it for that source), "new item similar to <title>" (an item
never interacted with, or first seen less than `NEW_ITEM_DAYS` ago and not in the log's
first `NEW_ITEM_DAYS`, when everything is new), "trending in <category>".

>>> from streamrec.models.trending import Trending
>>> from streamrec.types import Item
>>> fusion = Fusion({"trending": Trending()})
>>> fusion.update_items([Item("a", "Alpha"), Item("b", "Beta")])
>>> fusion.learn(UserContext("u"), Interaction("a", "view", 0.0))
>>> fusion.recommend([UserContext("new")], k=2)  # no history: trending, then newest
[[('a', 1.0), ('b', 0.0)]]

``streamrec train`` fits the weights for each artifact it writes, on the same log (`fit_for`:
the events it holds out, each user's last, are the fitting positions). To refit on a log
next to the newest artifact without retraining::

    python -m models.fusion --dataset ml-100k --model-dir .streamrec/models
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamrec.types import EVENT_WEIGHTS, Explanation, Interaction, Ranked, UserContext, parse_event_weights

from streamrec.models.base import Recommender, top_k
from streamrec.models.content import Content, closest
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.popularity import Popularity
from streamrec.models.trending import DAY_S, Trending
from streamrec.types import EVENT_TYPES, EVENT_TYPE_INDEX, Event, Item

if TYPE_CHECKING:
    from streamrec.models.transformer import TransformerRecommender

log = logging.getLogger(__name__)

FORMAT = 1
WEIGHTS_FILE = "fusion.json"
SOURCES = ("transformer", "cooccurrence", "content", "trending")
# Candidates per source: the next item is in the union of the top 100s about twice as
# often as in the transformer's top 10, and 4 x 100 candidates score in well under 1 ms.
FETCH = 100
# Co-occurrence inside the fusion forgets with a 120-day event-time half-life: on ml-100k
# (7 months) it ranks as well as no decay (30 days costs 0.005 NDCG@10, docs/fusion.md),
# and a live stream still drops stale pairs.
COOCCURRENCE_HALF_LIFE_S = 120 * DAY_S
# History length at which the user's "length" feature reaches 1 (the worker's window).
FULL_WINDOW = 50
# L2 penalty of the logistic regression on standardised features; Newton steps to fit.
L2 = 1.0
NEWTON_STEPS = 30
# Users per feature batch while fitting (the worker's micro-batch size).
BATCH = 256
# An item first seen less than this long ago is introduced as "new" in explanations.
NEW_ITEM_DAYS = 30.0
USER_FEATURES = ("1", "history", "click_share", "purchase_share")
VERBS = {"view": "viewed", "click": "clicked", "purchase": "bought"}


def candidate_features(sources: Sequence[str]) -> list[str]:
    """Names of ``b``: bias, one score and one rank per source, popularity, age."""
    return ["1", *(f"score:{s}" for s in sources), *(f"rank:{s}" for s in sources), "popularity", "age"]


def feature_names(sources: Sequence[str]) -> list[str]:
    return [f"{u}*{b}" for u in USER_FEATURES for b in candidate_features(sources)]


@dataclass
class FusionWeights:
    """Standardisation and coefficients of the logit, in `feature_names` order."""

    sources: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def combsum(cls, sources: Sequence[str]) -> FusionWeights:
        """Untrained default: the sum of the sources' scaled scores."""
        names = feature_names(sources)
        coef = np.array([1.0 if n.startswith("1*score:") else 0.0 for n in names])
        return cls(tuple(sources), np.zeros(len(names)), np.ones(len(names)), coef, {"fitted": False})

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.coef

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """``(n, S)``: each source's share of the logit (its score and rank terms)."""
        return (((features - self.mean) / self.scale) * self.coef) @ self._source_terms

    @functools.cached_property
    def _source_terms(self) -> np.ndarray:
        """``(features, S)`` 0/1: which source's score or rank each feature is."""
        names = [name.partition("*")[2].partition(":")[2] for name in feature_names(self.sources)]
        return np.array([[name == source for source in self.sources] for name in names], dtype=np.float64)

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / WEIGHTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT,
            "sources": list(self.sources),
            "features": feature_names(self.sources),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "meta": self.meta,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> FusionWeights | None:
        path = Path(model_dir) / WEIGHTS_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data["features"] != feature_names(data["sources"]):
            raise ValueError(f"{path}: not a format-{FORMAT} fusion weights file")
        arrays = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
        return cls(tuple(data["sources"]), *arrays, data.get("meta", {}))


class Fusion(Recommender):
    """Union of source candidates, ranked by `FusionWeights`; trending/newest fallback."""

    name = "fusion"

    def __init__(
        self,
        sources: Mapping[str, Recommender],
        weights: FusionWeights | None = None,
        event_weights: Mapping[str, float] | None = None,
        fetch: int = FETCH,
    ) -> None:
        if not isinstance(sources.get("trending"), Trending):
            raise ValueError("fusion needs a 'trending' source: it is the fallback for new users")
        self.sources = dict(sources)
        self.weights = weights or FusionWeights.combsum(tuple(self.sources))
        if self.weights.sources != tuple(self.sources):
            raise ValueError(f"weights are for sources {self.weights.sources}, got {tuple(self.sources)}")
        self.trending: Trending = self.sources["trending"]
        self.fetch = fetch
        self.popularity = Popularity(dict(EVENT_WEIGHTS if event_weights is None else event_weights))
        self.items = self.popularity.items  # vocab order = first seen: the "newest" fallback order
        self.first_seen: dict[str, float] = {}
        self.started: float | None = None  # first event time learned
        self.clock: float | None = None  # newest event time learned
        self.catalog: dict[str, Item] = {}  # latest version of every announced item
        self._credited: dict[str, dict[str, str]] = {}  # user -> item -> source, last recommend

    @classmethod
    def from_dir(
        cls,
        model_dir: str | Path,
        event_weights: Mapping[str, float] | None = None,
        transformer: TransformerRecommender | None = None,
    ) -> Fusion:
        """Transformer artifact + fresh streaming sources + ``fusion.json`` (CombSUM if absent).

        ``transformer``: the artifact's recommender as configured (new-item boost);
        default: the newest artifact under ``model_dir`` with default settings.
        """
        weights = FusionWeights.load(model_dir)
        if weights is None:
            log.warning("no %s under %s: fusion ranks by CombSUM until one is fitted", WEIGHTS_FILE, model_dir)
        sources = default_sources(model_dir, event_weights) if transformer is None else sources_around(transformer, event_weights)
        return cls(sources, weights, event_weights)

    def carry_over(self, previous: Recommender) -> None:
        """When items were first seen, as ``previous`` saw it live: a replay announces the
        whole catalog before any event, so it dates items by their first event at best."""
        if isinstance(previous, Fusion):
            self.first_seen.update(previous.first_seen)

    @property
    def version(self) -> str:
        transformer = self.sources.get("transformer")
        return f"{self.name}@{transformer.version.partition('@')[2]}" if transformer else self.name

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        for source in self.sources.values():
            source.learn(user, interaction)
        self.popularity.learn(user, interaction)
        self.first_seen.setdefault(interaction.item_id, interaction.ts)
        self.clock = interaction.ts if self.clock is None else max(self.clock, interaction.ts)
        self.started = interaction.ts if self.started is None else min(self.started, interaction.ts)

    def update_items(self, items: Iterable[Item]) -> None:
        items = list(items)
        for source in self.sources.values():
            source.update_items(items)
        self.popularity.update_items(items)
        for item in items:
            self.catalog[item.item_id] = item
            if self.clock is not None:
                self.first_seen.setdefault(item.item_id, self.clock)

    def embed(self, users: Sequence[UserContext]) -> np.ndarray | None:
        transformer = self.sources.get("transformer")
        return transformer.embed(users) if transformer else None

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        out: list[Ranked] = [[] for _ in users]
        self._credited = {}
        with_history = [n for n, user in enumerate(users) if user.window]
        features = self.features([users[n] for n in with_history])
        for n, (candidates, x) in zip(with_history, features, strict=True):
            logits = self.weights.logits(x)
            order = np.argsort(-logits, kind="stable")[:k]
            out[n] = [(candidates[c], float(logits[c])) for c in order]
            self._credited[users[n].user_id] = self.credit(candidates, x, order)
        return [r if len(r) >= k else self.fill(user, r, k) for user, r in zip(users, out, strict=True)]

    def features(self, users: Sequence[UserContext]) -> list[tuple[list[str], np.ndarray]]:
        """Per user: the candidates (in the order the sources first propose them) and their
        ``x`` matrix; built for the whole batch at once."""
        if not users:
            return []
        proposals = Proposals.of([source.recommend(users, self.fetch) for source in self.sources.values()])
        candidates = Candidates.of(proposals)
        u, b = self._user_vectors(users)[candidates.user], self._candidate_vectors(proposals, candidates)
        x = (u[:, :, None] * b[:, None, :]).reshape(len(b), -1)
        ids = np.array(proposals.item_ids, dtype=object)
        ends = np.searchsorted(candidates.user, np.arange(len(users) + 1))  # rows come user by user
        return [(ids[candidates.item[i:j]].tolist(), x[i:j]) for i, j in zip(ends[:-1], ends[1:], strict=True)]

    def fill(self, user: UserContext, ranked: Ranked, k: int) -> Ranked:
        """Complete ``ranked`` to ``k`` items: trending (positive trend), then newest.

        Scores stay non-increasing: an added item scores at most the one before it."""
        taken = {item for item, _ in ranked}
        trending = [(i, s) for i, s in self.trending.recommend([user], k)[0] if s > 0 and i not in taken]
        out = [*ranked, *trending][:k]
        taken |= {item for item, _ in trending}
        newest = np.arange(len(self.items.vocab), dtype=np.float64)
        banned = [*self.items.banned(user), *(self.items.vocab.index(i) for i in taken if i in self.items.vocab)]
        out += [(i, 0.0) for i, _ in top_k(newest, k - len(out), self.items.vocab, banned)] if len(out) < k else []
        floor = np.minimum.accumulate([s for _, s in out]) if out else []
        return [(item, float(s)) for (item, _), s in zip(out, floor, strict=True)]

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        credited = self._credited.get(user.user_id)
        if credited is None or any(item not in credited for item, _ in ranked):
            credited = self.credit(*self.features([user])[0]) if user.window else {}
        items = [item for item, _ in ranked]
        sources = [credited.get(item) for item in items]
        reasons = self._trending_reasons(user, items, sources) | self._anchored_reasons(user, items, sources)
        return [reasons[item] for item in items]

    def credit(self, candidates: list[str], x: np.ndarray, rows: Iterable[int] | None = None) -> dict[str, str]:
        """Candidate -> the source that adds most to its logit; only those in ``rows`` if given."""
        best = self.weights.contributions(x).argmax(axis=1)
        rows = range(len(candidates)) if rows is None else rows
        return {candidates[r]: self.weights.sources[best[r]] for r in rows}

    def _candidate_vectors(self, proposals: Proposals, candidates: Candidates) -> np.ndarray:
        """``b`` per candidate row (see module doc)."""
        n, s = len(candidates.item), len(self.sources)
        # math.log2, not np.log2: the same values as scoring one candidate at a time.
        log_rank = np.array([math.log2(1 + r) for r in range(max(self.fetch, int(proposals.rank.max(initial=0))) + 2)])
        scores, ranks = np.zeros((n, s)), np.full((n, s), log_rank[self.fetch + 1])
        scores[candidates.row, proposals.source] = proposals.score
        ranks[candidates.row, proposals.source] = log_rank[proposals.rank]
        popularity, log_age = self._item_vectors(proposals.item_ids)
        item = candidates.item
        return np.column_stack([np.ones(n), scores, ranks, popularity[item], log_age[item]])

    def _item_vectors(self, item_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Scaled popularity and ``log(1 + age / day)`` per item."""
        pop = np.log1p(self.items.live())
        pop = pop / pop.max() if len(pop) and pop.max() > 0 else pop
        rows = self.items.vocab.indices(item_ids)
        popularity = np.zeros(len(item_ids))
        popularity[rows >= 0] = pop[rows[rows >= 0]]
        first = np.fromiter(map(self.first_seen.get, item_ids, repeat(np.nan)), np.float64, len(item_ids))
        age = np.zeros(len(item_ids))
        seen = ~np.isnan(first)
        if self.clock is not None:
            age[seen] = np.maximum(0.0, self.clock - first[seen]) / DAY_S
        return popularity, np.log1p(age)

    def _user_vectors(self, users: Sequence[UserContext]) -> np.ndarray:
        """``u`` per user (one row each)."""
        lengths = np.array([len(user.window) for user in users])
        types = np.fromiter((EVENT_TYPE_INDEX[e.event_type] for user in users for e in user.window), np.int64)
        owner = np.repeat(np.arange(len(users)), lengths)
        counts = np.bincount(owner * len(EVENT_TYPES) + types, minlength=len(users) * len(EVENT_TYPES))
        shares = counts.reshape(len(users), -1) / np.maximum(lengths, 1)[:, None]
        history = [math.log1p(n) / math.log1p(FULL_WINDOW) for n in lengths]
        click, purchase = EVENT_TYPE_INDEX["click"], EVENT_TYPE_INDEX["purchase"]
        return np.column_stack([np.ones(len(users)), history, shares[:, click], shares[:, purchase]])

    def _age_days(self, item_id: str) -> float:
        first = self.first_seen.get(item_id)
        return 0.0 if first is None or self.clock is None else max(0.0, self.clock - first) / DAY_S

    def _is_new(self, item_id: str) -> bool:
        first = self.first_seen.get(item_id)
        if first is None or self.started is None:
            return True
        return first - self.started >= NEW_ITEM_DAYS * DAY_S and self._age_days(item_id) < NEW_ITEM_DAYS

    def _trending_reasons(
        self, user: UserContext, items: list[str], sources: list[str | None]
    ) -> dict[str, Explanation]:
        """Items credited to trending, and fallback items: "trending ..." if they trend, else "new"."""
        live, vocab = self.trending.items.live(), self.trending.items.vocab
        fallback = [i for i, s in zip(items, sources, strict=True) if s is None]
        trend = [i for i in fallback if (row := vocab.index(i)) is not None and live[row] > 0]
        trend += [i for i, s in zip(items, sources, strict=True) if s == "trending"]
        newest = {i: {"reason": "new in the catalog", "source": "newest"} for i in fallback}
        return newest | dict(zip(trend, self.trending.explain(user, [(i, 0.0) for i in trend]), strict=True))

    def _anchored_reasons(
        self, user: UserContext, items: list[str], sources: list[str | None]
    ) -> dict[str, Explanation]:
        """Items credited to any other source: named after the window item that explains them."""
        out = {}
        for source in dict.fromkeys(s for s in sources if s not in (None, "trending")):
            credited = [i for i, s in zip(items, sources, strict=True) if s == source]
            for item_id, anchor in zip(credited, self._anchors(user, credited, source), strict=True):
                out[item_id] = self._because(item_id, source, anchor)
        return out

    def _because(self, item_id: str, source: str, anchor: Interaction | None) -> Explanation:
        if anchor is None:
            return {"reason": "picked for you from your recent activity", "source": source}
        title = self.catalog[anchor.item_id].title if anchor.item_id in self.catalog else anchor.item_id
        if self._is_new(item_id):
            return {"reason": f"new item similar to {title}", "source": source}
        return {"reason": f"because you {VERBS[anchor.event_type]} {title}", "source": source}

    def _anchors(self, user: UserContext, item_ids: list[str], source: str) -> list[Interaction | None]:
        """Per item, the window item that best explains it for ``source``: its co-occurrence
        anchor, else the nearest in the source's item vectors, else the nearest in text."""
        model = self.sources[source]
        found = [model.anchor(user, i) for i in item_ids] if isinstance(model, CoOccurrence) else [None] * len(item_ids)
        indexes = [getattr(model, "index", None)]  # transformer and content have item vectors
        content = self.sources.get("content")
        if isinstance(content, Content) and content.index:  # an index with no available item: no text fallback
            indexes.append(content.index)
        for index in indexes:
            missing = [n for n, anchor in enumerate(found) if anchor is None]
            if index is not None and missing:
                for n, anchor in zip(missing, closest(index, user.window, [item_ids[n] for n in missing]), strict=True):
                    found[n] = anchor
        return found


@dataclass
class Proposals:
    """Every source's list for every user of a batch, flattened: user by user, then source
    by source, best first (`Fusion.features`)."""

    user: np.ndarray  # (M,) position in the batch of the user it was proposed to
    source: np.ndarray  # (M,) column of the proposing source
    rank: np.ndarray  # (M,) 1-based rank in that source's list
    score: np.ndarray  # (M,) score min-max scaled over that list (1 for a flat list)
    item: np.ndarray  # (M,) position of the proposed item in ``item_ids``
    item_ids: list[str]  # the distinct items proposed, first-proposed first

    @classmethod
    def of(cls, lists: Sequence[Sequence[Ranked]]) -> Proposals:
        """``lists[s][n]``: source ``s``'s list for user ``n``."""
        ranked = [by_source[n] for n in range(len(lists[0])) for by_source in lists]
        lengths = np.array([len(r) for r in ranked], dtype=np.int64)
        group = np.repeat(np.arange(len(ranked)), lengths)
        # zip/chain/map keep the per-proposal work in C: a batch holds ~400 proposals per user.
        columns = [tuple(zip(*r)) or ((), ()) for r in ranked]
        ids = list(chain.from_iterable(i for i, _ in columns))
        score = np.fromiter(chain.from_iterable(s for _, s in columns), np.float64, len(ids))
        item_ids = list(dict.fromkeys(ids))
        item = np.fromiter(map(dict(zip(item_ids, range(len(item_ids)))).__getitem__, ids), np.int64, len(ids))
        rank = np.arange(len(ids)) - (np.cumsum(lengths) - lengths)[group] + 1
        return cls(group // len(lists), group % len(lists), rank, min_max(score, lengths), item, item_ids)


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


def default_sources(model_dir: str | Path, event_weights: Mapping[str, float] | None = None) -> dict[str, Recommender]:
    """`SOURCES`, live: the newest transformer artifact under ``model_dir`` and fresh streaming models."""
    from streamrec.models.transformer import TransformerRecommender  # torch: only when a fusion is built

    return sources_around(TransformerRecommender.from_dir(model_dir), event_weights)


def sources_around(
    transformer: TransformerRecommender, event_weights: Mapping[str, float] | None = None
) -> dict[str, Recommender]:
    """`SOURCES`: ``transformer`` and fresh streaming models (content reads its artifact's text vectors)."""
    artifact = transformer.artifact
    weights = dict(EVENT_WEIGHTS if event_weights is None else event_weights)
    return {
        "transformer": transformer,
        "cooccurrence": CoOccurrence(weights, half_life_s=COOCCURRENCE_HALF_LIFE_S),
        # New items' text goes through the transformer's encoder: one model in memory.
        "content": Content(weights, (artifact.item_ids, artifact.item_text[1:]), transformer_encode(transformer)),
        "trending": Trending(weights),
    }


def transformer_encode(transformer: TransformerRecommender) -> Callable[[list[Item]], np.ndarray]:
    """Text vectors of new items through the transformer's (lazily loaded) encoder."""
    return lambda items: transformer.encoder.encode_items(items)


class NothingToFit(ValueError):
    """No fitting position has its next item among the candidates (e.g. too short a log)."""


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = NEWTON_STEPS) -> np.ndarray:
    """``argmin_theta  sum_n log(1 + e^{-(2 y_n - 1) theta.x_n}) + l2/2 |theta|^2`` by Newton's method.

    >>> x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]]); y = np.array([0, 0, 1, 1.0])
    >>> theta = logistic_regression(x, y, l2=0.1)
    >>> bool(theta[1] > 0), (x @ theta > 0).tolist()
    (True, [False, False, True, True])
    """
    theta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (p - y) + l2 * theta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta


def fit(model: Fusion, contexts: Sequence[UserContext], targets: Sequence[str], l2: float = L2) -> FusionWeights:
    """Fit `FusionWeights` for ``model``'s sources on next-item positions (see module doc)."""
    rows, labels = [], []
    for start in range(0, len(contexts), BATCH):
        chunk = contexts[start : start + BATCH]
        for (candidates, x), target in zip(model.features(chunk), targets[start : start + BATCH], strict=True):
            if target in candidates:
                rows.append(x)
                labels.append(np.array([item == target for item in candidates], dtype=np.float64))
    if not rows:
        raise NothingToFit("no position has its next item among the candidates: nothing to fit")
    x, y = np.concatenate(rows), np.concatenate(labels)
    std = x.std(axis=0)
    mean, scale = np.where(std > 0, x.mean(axis=0), 0.0), np.where(std > 0, std, 1.0)
    coef = logistic_regression((x - mean) / scale, y, l2)
    meta = {"fitted": True, "positions": len(contexts), "with_target": len(rows), "rows": len(y)}
    meta |= {"l2": l2, "fetch": model.fetch}
    return FusionWeights(tuple(model.sources), mean, scale, coef, meta)


def fit_on_log(model: Fusion, events: Sequence[Event], items: Sequence[Item]) -> FusionWeights:
    """Feed each user's events but the last, then fit on the last ones (the positions
    ``streamrec train`` holds out, so the transformer did not train on them)."""
    from streamrec.models.evaluation import feed, holdout_contexts
    from streamrec.models.training import user_sequences

    seqs = {u: evs for u, evs in user_sequences(events).items() if len(evs) >= 3}
    feed(model, {u: evs[:-1] for u, evs in seqs.items()}, items)
    # holdout_contexts(train, valid, test): window = train + valid = all but the last event.
    parts = ({u: evs[:-2] for u, evs in seqs.items()}, {u: evs[-2] for u, evs in seqs.items()})
    contexts, targets = holdout_contexts(*parts, {u: evs[-1] for u, evs in seqs.items()})
    return fit(model, contexts, targets)


def fit_for(
    transformer: TransformerRecommender,
    events: Sequence[Event],
    items: Sequence[Item],
    event_weights: Mapping[str, float] | None = None,
) -> FusionWeights:
    """`fit_on_log` for a fusion of fresh sources around ``transformer`` (``streamrec train``
    and ``python -m models.fusion``); the metadata names the transformer's artifact."""
    weights = fit_on_log(Fusion(sources_around(transformer, event_weights), event_weights=event_weights), events, items)
    weights.meta["artifact"] = transformer.artifact_version
    return weights


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m models.fusion``: fit ``fusion.json`` next to the newest artifact
    (``streamrec train`` does it too; this refits without retraining)."""
    from streamrec.models.transformer import TransformerRecommender
    from streamrec.streams.sources import movielens_events, movielens_items, read_events, read_items

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dataset", choices=["ml-100k"])
    parser.add_argument("--events", help="events JSONL/CSV (with --items)")
    parser.add_argument("--items", help="items JSONL/CSV")
    parser.add_argument("--model-dir", default=".streamrec/models")
    parser.add_argument("--event-weights", default="view=1,click=2,purchase=4")
    args = parser.parse_args(argv)
    if args.dataset:
        events, items = movielens_events(args.dataset), movielens_items(args.dataset)
    elif args.events and args.items:
        events, items = list(read_events(args.events)), list(read_items(args.items))
    else:
        parser.error("give --dataset, or both --events and --items")
    transformer = TransformerRecommender.from_dir(args.model_dir)
    weights = fit_for(transformer, events, items, parse_event_weights(args.event_weights))
    print(weights.save(args.model_dir), json.dumps(weights.meta))


if __name__ == "__main__":
    main()
