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

>>> from models.trending import Trending
>>> from streams.contracts import Item
>>> fusion = Fusion({"trending": Trending()})
>>> fusion.update_items([Item("a", "Alpha"), Item("b", "Beta")])
>>> fusion.learn(UserContext("u"), Interaction("a", "view", 0.0))
>>> fusion.recommend([UserContext("new")], k=2)  # no history: trending, then newest
[[('a', 1.0), ('b', 0.0)]]

Fit on a log and save next to the transformer artifact (``streamrec train`` holds out each
user's last event; the same events are the fitting positions here)::

    python -m models.fusion --dataset ml-100k --model-dir .streamrec/models
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.base import (
    EVENT_WEIGHTS,
    Explanation,
    Interaction,
    ItemVocab,
    Ranked,
    Recommender,
    UserContext,
    parse_event_weights,
    top_k,
)
from models.content import Content, closest
from models.cooccurrence import CoOccurrence
from models.popularity import Popularity
from models.trending import DAY_S, Trending
from streams.contracts import EVENT_TYPE_INDEX, EVENT_TYPES, Event, Item

if TYPE_CHECKING:
    from models.transformer import TransformerRecommender

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
        names = [name.partition("*")[2].partition(":")[2] for name in feature_names(self.sources)]
        mask = np.array([[name == source for source in self.sources] for name in names], dtype=np.float64)
        return (((features - self.mean) / self.scale) * self.coef) @ mask

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
    def from_dir(cls, model_dir: str | Path, event_weights: Mapping[str, float] | None = None) -> Fusion:
        """Transformer artifact + fresh streaming sources + ``fusion.json`` (CombSUM if absent)."""
        weights = FusionWeights.load(model_dir)
        if weights is None:
            log.warning("no %s under %s: fusion ranks by CombSUM until one is fitted", WEIGHTS_FILE, model_dir)
        return cls(default_sources(model_dir, event_weights), weights, event_weights)

    def reloaded(self, model_dir: str | Path) -> Fusion:
        """A fusion on the newest artifact and ``fusion.json`` that *shares* this one's
        streaming state (sources, counts, catalog), for hot reload: build it off the event
        loop, then swap; events learned meanwhile are in the shared state already."""
        from models.transformer import TransformerRecommender

        sources = self.sources | {"transformer": TransformerRecommender.from_dir(model_dir)}
        new = Fusion(sources, FusionWeights.load(model_dir), fetch=self.fetch)
        new.popularity, new.items, new.first_seen, new.catalog = self.popularity, self.items, self.first_seen, self.catalog
        new.started, new.clock = self.started, self.clock  # copies: catch up at the next event
        new.sources["transformer"].update_items(self.catalog.values())  # items the artifact lacks: text-only
        return new

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
            self._credited[users[n].user_id] = self.credit(candidates, x)
        return [r if len(r) >= k else self.fill(user, r, k) for user, r in zip(users, out, strict=True)]

    def features(self, users: Sequence[UserContext]) -> list[tuple[list[str], np.ndarray]]:
        """Per user: the candidates and their ``x`` matrix."""
        lists = {name: source.recommend(users, self.fetch) for name, source in self.sources.items()}
        pop = np.log1p(self.items.live())
        pop = pop / pop.max() if len(pop) and pop.max() > 0 else pop
        return [self._user_features(user, [lists[s][n] for s in self.sources], pop) for n, user in enumerate(users)]

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
        return [self._explain(user, item, credited.get(item)) for item, _ in ranked]

    def credit(self, candidates: list[str], x: np.ndarray) -> dict[str, str]:
        """Candidate -> the source that adds most to its logit."""
        best = self.weights.contributions(x).argmax(axis=1)
        return {item: self.weights.sources[b] for item, b in zip(candidates, best, strict=True)}

    def _user_features(self, user: UserContext, lists: list[Ranked], pop: np.ndarray) -> tuple[list[str], np.ndarray]:
        vocab = ItemVocab(item for ranked in lists for item, _ in ranked)
        n, s = len(vocab), len(lists)
        scores, ranks = np.zeros((n, s)), np.full((n, s), math.log2(self.fetch + 2))
        for col, ranked in enumerate(lists):
            values = np.array([score for _, score in ranked])
            low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
            for rank, (item, score) in enumerate(ranked, 1):
                row = vocab.index(item)
                scores[row, col] = (score - low) / (high - low) if high > low else 1.0
                ranks[row, col] = math.log2(1 + rank)
        idx = [self.items.vocab.index(i) for i in vocab.ids]
        popularity = np.array([pop[i] if i is not None and i < len(pop) else 0.0 for i in idx])
        age = np.array([self._age_days(i) for i in vocab.ids])
        b = np.column_stack([np.ones(n), scores, ranks, popularity, np.log1p(age)])
        x = (self._user_vector(user)[None, :, None] * b[:, None, :]).reshape(n, -1)
        return vocab.ids, x

    def _user_vector(self, user: UserContext) -> np.ndarray:
        counts = np.bincount([EVENT_TYPE_INDEX[e.event_type] for e in user.window], minlength=len(EVENT_TYPES))
        shares = counts / max(len(user.window), 1)
        history = math.log1p(len(user.window)) / math.log1p(FULL_WINDOW)
        return np.array([1.0, history, shares[EVENT_TYPE_INDEX["click"]], shares[EVENT_TYPE_INDEX["purchase"]]])

    def _age_days(self, item_id: str) -> float:
        first = self.first_seen.get(item_id)
        return 0.0 if first is None or self.clock is None else max(0.0, self.clock - first) / DAY_S

    def _is_new(self, item_id: str) -> bool:
        first = self.first_seen.get(item_id)
        if first is None or self.started is None:
            return True
        return first - self.started >= NEW_ITEM_DAYS * DAY_S and self._age_days(item_id) < NEW_ITEM_DAYS

    def _explain(self, user: UserContext, item_id: str, source: str | None) -> Explanation:
        if source is None:  # a fallback item
            trend = self.trending.items.vocab.index(item_id)
            if trend is not None and self.trending.items.live()[trend] > 0:
                return self.trending.explain(user, [(item_id, 0.0)])[0]
            return {"reason": "new in the catalog", "source": "newest"}
        if source == "trending":
            return self.trending.explain(user, [(item_id, 0.0)])[0]
        anchor = self._anchor(user, item_id, source)
        if anchor is None:
            return {"reason": "picked for you from your recent activity", "source": source}
        title = self.catalog[anchor.item_id].title if anchor.item_id in self.catalog else anchor.item_id
        if self._is_new(item_id):
            return {"reason": f"new item similar to {title}", "source": source}
        return {"reason": f"because you {VERBS[anchor.event_type]} {title}", "source": source}

    def _anchor(self, user: UserContext, item_id: str, source: str) -> Interaction | None:
        """The window item that best explains ``item_id`` for ``source`` (text similarity otherwise)."""
        model = self.sources[source]
        if isinstance(model, CoOccurrence):
            found = model.anchor(user, item_id)
            if found is not None:
                return found
        if hasattr(model, "index"):  # transformer and content: nearest item vector in the window
            found = closest(model.index, user.window, item_id)
            if found is not None:
                return found
        content = self.sources.get("content")
        return closest(content.index, user.window, item_id) if isinstance(content, Content) and content.index else None


def default_sources(model_dir: str | Path, event_weights: Mapping[str, float] | None = None) -> dict[str, Recommender]:
    """`SOURCES`, live: the newest transformer artifact under ``model_dir`` and fresh streaming models."""
    from models.transformer import TransformerRecommender  # torch: only when a fusion is built

    transformer = TransformerRecommender.from_dir(model_dir)
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
        raise ValueError("no position has its next item among the candidates: nothing to fit")
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
    from models.evaluation import feed, holdout_contexts
    from models.training import user_sequences

    seqs = {u: evs for u, evs in user_sequences(events).items() if len(evs) >= 3}
    feed(model, {u: evs[:-1] for u, evs in seqs.items()}, items)
    # holdout_contexts(train, valid, test): window = train + valid = all but the last event.
    parts = ({u: evs[:-2] for u, evs in seqs.items()}, {u: evs[-2] for u, evs in seqs.items()})
    contexts, targets = holdout_contexts(*parts, {u: evs[-1] for u, evs in seqs.items()})
    return fit(model, contexts, targets)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m models.fusion``: fit ``fusion.json`` next to the newest artifact."""
    from streams.sources import movielens_events, movielens_items, read_events, read_items

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
    event_weights = parse_event_weights(args.event_weights)
    model = Fusion(default_sources(args.model_dir, event_weights), event_weights=event_weights)
    weights = fit_on_log(model, events, items)
    weights.meta["artifact"] = model.version.partition("@")[2]
    print(weights.save(args.model_dir), json.dumps({k: v for k, v in weights.meta.items()}))


if __name__ == "__main__":
    main()
