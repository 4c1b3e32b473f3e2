"""Why the fusion ranker recommends an item (`Fusion.explain`).

Each item is credited to the source whose terms (score and rank) add most to its logit,
and says why: "because you clicked <title>" (the window item nearest to it for that
source), "new item similar to <title>" (an item never interacted with, or first seen
less than `NEW_ITEM_DAYS` ago and not in the log's first `NEW_ITEM_DAYS`, when
everything is new), "trending in <category>"; items of the fallback chain are
"trending ..." when they trend, else "new in the catalog".

>>> from streamrec.models.fusion import Fusion
>>> fusion = Fusion({"cooccurrence": CoOccurrence(), "trending": Trending()})
>>> fusion.update_items([Item("a", "Alpha"), Item("b", "Beta")])
>>> for user in ("u1", "u2"):
...     fusion.learn(UserContext(user), Interaction("a", "purchase", 0.0))
...     fusion.learn(UserContext(user, (Interaction("a", "purchase", 0.0),)), Interaction("b", "view", 1.0))
>>> fan = UserContext("fan", (Interaction("a", "purchase", 2.0),), frozenset({"a"}))
>>> fusion.explain(fan, fusion.recommend([fan], 1)[0])
[{'reason': 'because you bought Alpha', 'source': 'cooccurrence'}]
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from streamrec.models.base import Recommender
from streamrec.models.content import Content, closest
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.fusion.weights import FusionWeights
from streamrec.models.trending import DAY_S, Trending
from streamrec.types import Explanation, Interaction, Item, Ranked, UserContext

# An item first seen less than this long ago is introduced as "new" in explanations.
NEW_ITEM_DAYS = 30.0
VERBS = {"view": "viewed", "click": "clicked", "purchase": "bought"}


class Explanations:
    """`explain` for `models.fusion.Fusion`, from the state the ranker keeps (mixin)."""

    sources: dict[str, Recommender]
    weights: FusionWeights
    trending: Trending
    catalog: Mapping[str, Item]
    first_seen: Mapping[str, float]
    started: float | None
    clock: float | None
    _credited: dict[str, dict[str, str]]  # user -> item -> source, last recommend

    @abc.abstractmethod
    def features(self, users: Sequence[UserContext]) -> list[tuple[list[str], np.ndarray]]:
        """Per user: the candidates and their feature rows (the ranker's)."""

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
        found: list[Interaction | None] = (
            [model.anchor(user, i) for i in item_ids] if isinstance(model, CoOccurrence) else [None] * len(item_ids)
        )
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
