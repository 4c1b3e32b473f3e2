"""The fusion ranker: the union of the sources' candidates, ranked by `FusionWeights`.

Ranking is by the logit ``z(i) = \\theta \\cdot (x(i) - \\mu) / \\sigma`` of each candidate's
features (`models.fusion.features`). **Fallback chain** for a user with an empty window
(or too few candidates): trending items with a positive trend, then the newest items of
the catalog (latest first announced or interacted with), so a non-empty catalog always
yields ``k`` items.

>>> from streamrec.types import Item
>>> fusion = Fusion({"trending": Trending()})
>>> fusion.update_items([Item("a", "Alpha"), Item("b", "Beta")])
>>> fusion.learn(UserContext("u"), Interaction("a", "view", 0.0))
>>> fusion.recommend([UserContext("new")], k=2)  # no history: trending, then newest
[[('a', 1.0), ('b', 0.0)]]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamrec.models.base import Recommender, top_k
from streamrec.models.content import Content
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.fusion.explanations import Explanations
from streamrec.models.fusion.features import (
    Candidates,
    ItemUnion,
    Proposals,
    candidate_vectors,
    item_vectors,
    user_vectors,
)
from streamrec.models.fusion.weights import WEIGHTS_FILE, FusionWeights
from streamrec.models.popularity import ItemScores, Popularity
from streamrec.models.trending import DAY_S, Trending
from streamrec.types import EVENT_WEIGHTS, Interaction, Item, Ranked, UserContext

if TYPE_CHECKING:
    from streamrec.models.transformer import TransformerRecommender

log = logging.getLogger(__name__)

SOURCES = ("transformer", "cooccurrence", "content", "trending")
# Candidates per source: the next item is in the union of the top 100s about twice as
# often as in the transformer's top 10, and 4 x 100 candidates score in well under 1 ms.
FETCH = 100
# Co-occurrence inside the fusion forgets with a 120-day event-time half-life: on ml-100k
# (7 months) it ranks as well as no decay (30 days costs 0.005 NDCG@10, docs/fusion.md),
# and a live stream still drops stale pairs.
COOCCURRENCE_HALF_LIFE_S = 120 * DAY_S


class Fusion(Explanations, Recommender):
    """Union of source candidates, ranked by `FusionWeights`; trending/newest fallback."""

    name = "fusion"
    ITEM_STATE = ("popularity", "first_seen", "started", "clock", "catalog")

    def __init__(
        self,
        sources: Mapping[str, Recommender],
        weights: FusionWeights | None = None,
        event_weights: Mapping[str, float] | None = None,
        fetch: int = FETCH,
    ) -> None:
        trending = sources.get("trending")
        if not isinstance(trending, Trending):
            raise ValueError("fusion needs a 'trending' source: it is the fallback for new users")
        self.sources = dict(sources)
        self.weights = weights or FusionWeights.combsum(tuple(self.sources))
        if self.weights.sources != tuple(self.sources):
            raise ValueError(f"weights are for sources {self.weights.sources}, got {tuple(self.sources)}")
        self.trending = trending
        self.fetch = fetch
        self.popularity = Popularity(dict(EVENT_WEIGHTS if event_weights is None else event_weights))
        self.first_seen: dict[str, float] = {}
        self.started: float | None = None  # first event time learned
        self.clock: float | None = None  # newest event time learned
        self.catalog: dict[str, Item] = {}  # latest version of every announced item
        self._credited: dict[str, dict[str, str]] = {}  # user -> item -> source, last recommend
        self._union = ItemUnion()  # the sources' vocabularies in one index, kept across batches

    @classmethod
    def around(cls, transformer: TransformerRecommender, event_weights: Mapping[str, float] | None = None) -> Fusion:
        """``transformer`` (an artifact's recommender, as configured) + fresh streaming
        sources + the ``fusion.json`` of the same model version (CombSUM if it has none)."""
        folder = transformer.artifact.path
        weights = None if folder is None else FusionWeights.load(folder)
        if weights is None:
            log.warning("no %s in %s: fusion ranks by CombSUM until one is fitted", WEIGHTS_FILE, folder or "memory")
        return cls(sources_around(transformer, event_weights), weights, event_weights)

    @property
    def items(self) -> ItemScores:
        """Popularity; vocab order = first seen: the "newest" fallback order."""
        return self.popularity.items

    def item_state(self) -> dict[str, Any]:
        """Popularity, when items were first seen, the event-time span, the catalog, and
        every source's own statistics."""
        sources = {name: source.item_state() for name, source in self.sources.items()}
        return {**super().item_state(), "sources": sources}

    def load_item_state(self, state: Mapping[str, Any]) -> None:
        super().load_item_state(state)
        for name, source in self.sources.items():
            source.load_item_state(state["sources"][name])

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
            # Dated when first announced after the first event (a re-announcement keeps the date).
            if self.clock is not None and item.item_id not in self.catalog:
                self.first_seen.setdefault(item.item_id, self.clock)
            self.catalog[item.item_id] = item

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
            out[n] = list(zip(map(candidates.__getitem__, order.tolist()), logits[order].tolist(), strict=True))
            self._credited[users[n].user_id] = self.credit(candidates, x, order)
        return [r if len(r) >= k else self.fill(user, r, k) for user, r in zip(users, out, strict=True)]

    def features(self, users: Sequence[UserContext]) -> list[tuple[list[str], np.ndarray]]:
        """Per user: the candidates (in the order the sources first propose them) and their
        ``x`` matrix; built for the whole batch at once."""
        if not users:
            return []
        lists = [source.recommend_arrays(users, self.fetch) for source in self.sources.values()]
        proposals = Proposals.of(lists, self._union)
        candidates = Candidates.of(proposals)
        popularity, log_age = item_vectors(self.items, self.first_seen, self.clock, proposals.item_ids)
        b = candidate_vectors(proposals, candidates, len(self.sources), self.fetch, popularity, log_age)
        u = user_vectors(users)[candidates.user]
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
        banned = [*self.items.banned(user), *(i for i in self.items.vocab.indices(taken).tolist() if i >= 0)]
        out += [(i, 0.0) for i, _ in top_k(newest, k - len(out), self.items.vocab, banned)] if len(out) < k else []
        floor = np.minimum.accumulate([s for _, s in out]) if out else np.zeros(0)
        return [(item, float(s)) for (item, _), s in zip(out, floor, strict=True)]


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
