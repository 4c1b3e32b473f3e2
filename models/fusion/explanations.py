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
from streamrec.models.content import Content, closest_many
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.fusion.weights import FusionWeights
from streamrec.models.retrieval import ItemIndex
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
        return self.explain_all([user], [ranked])[0]

    def explain_all(self, users: Sequence[UserContext], lists: Sequence[Ranked]) -> list[list[Explanation]]:
        """Every list of a batch at once: one category profile per user, and one batched
        nearest-window-item search per item index (`models.content.closest_many`)."""
        items = [[item for item, _ in ranked] for ranked in lists]
        sources = [
            [credited.get(item) for item in its]
            for credited, its in zip(map(self._credits, users, items), items, strict=True)
        ]
        trending = self._trending_reasons(users, items, sources)
        anchored = self._anchored_reasons(users, items, sources)
        return [[(t | a)[item] for item in its] for t, a, its in zip(trending, anchored, items, strict=True)]

    def _credits(self, user: UserContext, items: list[str]) -> dict[str, str]:
        """Item -> source, from the last `recommend` if it ranked them for ``user``."""
        credited = self._credited.get(user.user_id)
        if credited is None or any(item not in credited for item in items):
            credited = self.credit(*self.features([user])[0]) if user.window else {}
        return credited

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
        self, users: Sequence[UserContext], items: list[list[str]], sources: list[list[str | None]]
    ) -> list[dict[str, Explanation]]:
        """Items credited to trending, and fallback items: "trending ..." if they trend, else "new"."""
        live, vocab = self.trending.items.live(), self.trending.items.vocab
        newest, trend = [], []
        for its, srcs in zip(items, sources, strict=True):
            fallback = [i for i, s in zip(its, srcs, strict=True) if s is None]
            trend.append([i for i in fallback if (row := vocab.index(i)) is not None and live[row] > 0])
            trend[-1] += [i for i, s in zip(its, srcs, strict=True) if s == "trending"]
            newest.append({i: {"reason": "new in the catalog", "source": "newest"} for i in fallback})
        why = self.trending.explain_all(users, [[(i, 0.0) for i in t] for t in trend])
        return [n | dict(zip(t, w, strict=True)) for n, t, w in zip(newest, trend, why, strict=True)]

    def _anchored_reasons(
        self, users: Sequence[UserContext], items: list[list[str]], sources: list[list[str | None]]
    ) -> list[dict[str, Explanation]]:
        """Items credited to any other source: named after the window item that explains them."""
        groups = []  # (user, source, the items credited to it), source by source per user
        for n, (its, srcs) in enumerate(zip(items, sources, strict=True)):
            for source in dict.fromkeys(s for s in srcs if s not in (None, "trending")):
                groups.append((n, source, [i for i, s in zip(its, srcs, strict=True) if s == source]))
        out: list[dict[str, Explanation]] = [{} for _ in users]
        for (n, source, credited), anchors in zip(groups, self._anchors(users, groups), strict=True):
            for item_id, anchor in zip(credited, anchors, strict=True):
                out[n][item_id] = self._because(item_id, source, anchor)
        return out

    def _because(self, item_id: str, source: str, anchor: Interaction | None) -> Explanation:
        if anchor is None:
            return {"reason": "picked for you from your recent activity", "source": source}
        title = self.catalog[anchor.item_id].title if anchor.item_id in self.catalog else anchor.item_id
        if self._is_new(item_id):
            return {"reason": f"new item similar to {title}", "source": source}
        return {"reason": f"because you {VERBS[anchor.event_type]} {title}", "source": source}

    def _anchors(
        self, users: Sequence[UserContext], groups: list[tuple[int, str, list[str]]]
    ) -> list[list[Interaction | None]]:
        """Per group's item, the window item that best explains it for the group's source:
        its co-occurrence anchor, else the nearest in the source's item vectors, else the
        nearest in text."""
        found: list[list[Interaction | None]] = []
        for n, source, item_ids in groups:
            model = self.sources[source]
            if isinstance(model, CoOccurrence):
                found.append([model.anchor(users[n], i) for i in item_ids])
            else:
                found.append([None] * len(item_ids))
        content = self.sources.get("content")
        # An index with no available item: no text fallback.
        text = content.index if isinstance(content, Content) and content.index else None
        for index_of in (self._own_index, lambda _: text):
            by_index: dict[int, tuple[ItemIndex, list[int]]] = {}
            for g, (_, source, _) in enumerate(groups):
                index = index_of(source)
                if index is not None and None in found[g]:
                    by_index.setdefault(id(index), (index, []))[1].append(g)
            for index, members in by_index.values():
                missing = [[k for k, anchor in enumerate(found[g]) if anchor is None] for g in members]
                windows = [users[groups[g][0]].window for g in members]
                asked = [[groups[g][2][k] for k in m] for g, m in zip(members, missing, strict=True)]
                for g, m, anchors in zip(members, missing, closest_many(index, windows, asked), strict=True):
                    for k, anchor in zip(m, anchors, strict=True):
                        found[g][k] = anchor
        return found

    def _own_index(self, source: str) -> ItemIndex | None:
        """The source's own item vectors, if it has any (the transformer and content do)."""
        return getattr(self.sources[source], "index", None)
