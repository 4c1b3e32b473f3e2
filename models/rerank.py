"""Long-tail control: re-rank with one knob, a penalty on what the system already over-serves.

The base recommender proposes its top ``F`` items with scores ``z`` (the fusion's are
logits); each is re-scored with its recent *exposure* ``E(i)``, the number of served
top-``k`` lists that contained it, each list fading with a half-life of ``H`` lists:

.. math::
    s'(i) = z(i) - \\lambda \\log(1 + E(i)), \\qquad
    E(i) = \\sum_{\\text{lists } l \\ni i} 2^{-(n - n_l)/H}

``n`` = lists served so far. ``\\lambda \\ge 0`` is the one knob: 0 keeps the base order;
with ``\\lambda = 1`` an item shown twice as often as another needs ``\\log 2 \\approx 0.69``
more logit to keep its place (``p / E^\\lambda`` in odds), so relevance still decides
between items of similar exposure. Unlike a penalty on interaction popularity, it
only demotes what *this system* keeps showing, which spreads exposure over the many
relevant items instead of pushing everyone to the same few niche ones: on ml-100k, at
coverage@10 ~0.7 (twice the fusion's), it costs 4% NDCG@10 where a popularity penalty
costs 36% (docs/fusion.md).
Lists are re-ranked in order, each seeing the exposure of those before it, so results
depend on the order of requests (as served lists do), never on the wall clock.

>>> from streamrec.models.popularity import Popularity
>>> model = TailRerank(Popularity(), knob=2.0)
>>> for item, n in (("hit", 3), ("mid", 2), ("niche", 1)):
...     for _ in range(n):
...         model.learn(UserContext("u"), Interaction(item, "view", 0.0))
>>> [[i for i, _ in model.recommend([UserContext(f"u{n}")], 1)[0]] for n in range(4)]
[['hit'], ['mid'], ['hit'], ['niche']]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from streamrec.models.base import Recommender
from streamrec.models.popularity import ItemScores
from streamrec.models.trending import EventTimeDecay
from streamrec.types import Explanation, Interaction, Item, Ranked, UserContext

# Candidates re-ranked per user: the depth each fusion source fetches; deeper lists add
# items too weak to be worth their exposure (measured: F = 50 / 100 / 200, docs/fusion.md).
FETCH = 100
# Exposure half-life in served lists: ~10 lists per catalog item on ml-100k, so the
# penalty reflects the current traffic mix, not last week's.
EXPOSURE_HALF_LIFE_LISTS = 20_000.0
TAIL = "+tail"
# Knob of a ``+tail`` recommender not given one: 0.5 keeps ~95% of the fusion's NDCG@10
# and takes coverage@10 from 0.44 to 0.61 on ml-100k (docs/fusion.md).
TAIL_KNOB = 0.5


class Exposure:
    """``E(i)`` of every item shown (see module doc): the re-ranker's memory of served lists,
    which no log holds, so a hot-reloaded re-ranker takes this object over as a whole."""

    def __init__(self, half_life_lists: float = EXPOSURE_HALF_LIFE_LISTS) -> None:
        self.sums = ItemScores()
        self.decay = EventTimeDecay(half_life_lists)
        self.served = 0

    def of(self, item_ids: Sequence[str]) -> np.ndarray:
        """``E(i)`` now (0 for items never shown)."""
        rows = self.sums.vocab.indices(item_ids)
        now = self.decay.weight(self.served)  # stored sums are in units of weight(0 lists ago)
        return np.where(rows >= 0, self.sums.scores[np.maximum(rows, 0)] / now, 0.0)

    def serve(self, item_ids: Sequence[str]) -> None:
        """Count one more served list."""
        factor = self.decay.rebase(self.served)
        if factor != 1.0:
            self.sums.scores *= factor
        weight = self.decay.weight(self.served)
        for item_id in item_ids:
            row = self.sums.index(item_id)  # may grow (replace) the scores array
            self.sums.scores[row] += weight
        self.served += 1


class TailRerank(Recommender):
    """``base`` re-ranked by exposure-penalised score (see module doc)."""

    name = "tail"
    ITEM_STATE = ("exposure",)

    def __init__(
        self, base: Recommender, knob: float, fetch: int = FETCH, half_life_lists: float = EXPOSURE_HALF_LIFE_LISTS
    ) -> None:
        if knob < 0:
            raise ValueError(f"tail knob must be >= 0, got {knob}")
        self.base, self.knob, self.fetch = base, knob, fetch
        self.exposure = Exposure(half_life_lists)

    @property
    def version(self) -> str:
        return f"{self.base.version}{TAIL}@{self.knob:g}"

    def item_state(self) -> dict[str, Any]:
        """The exposure memory itself (not a copy: lists the old model serves until a hot
        swap count too), and the base model's statistics."""
        return {**super().item_state(), "base": self.base.item_state()}

    def load_item_state(self, state: Mapping[str, Any]) -> None:
        super().load_item_state(state)
        self.base.load_item_state(state["base"])

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        self.base.learn(user, interaction)

    def update_items(self, items: Iterable[Item]) -> None:
        self.base.update_items(items)

    def embed(self, users: Sequence[UserContext]) -> np.ndarray | None:
        return self.base.embed(users)

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        lists = self.base.recommend(users, max(k, self.fetch))
        return [self.rerank(ranked, k) for ranked in lists]

    def rerank(self, ranked: Ranked, k: int) -> Ranked:
        """Top ``k`` of ``ranked`` by ``s'``; the result counts as served."""
        if self.knob > 0 and ranked:
            ids, base = zip(*ranked, strict=True)
            scores = np.array(base) - self.knob * np.log1p(self.exposures(ids))
            order = np.argsort(-scores, kind="stable")[:k]
            ranked = list(zip(map(ids.__getitem__, order.tolist()), scores[order].tolist(), strict=True))
        shown = ranked[:k]
        self.exposure.serve([item for item, _ in shown])
        return shown

    def exposures(self, item_ids: Sequence[str]) -> np.ndarray:
        """``E(i)`` now (0 for items never shown)."""
        return self.exposure.of(item_ids)

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        return self.base.explain(user, ranked)

    def explain_all(self, users: Sequence[UserContext], lists: Sequence[Ranked]) -> list[list[Explanation]]:
        return self.base.explain_all(users, lists)


def is_knob(text: str) -> bool:
    """A valid ``@knob`` suffix: a finite number >= 0."""
    try:
        return math.isfinite(float(text)) and float(text) >= 0
    except ValueError:
        return False
