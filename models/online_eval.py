"""Prequential evaluation without Kafka: what a recommender would score inside the worker.

The rule (the same as `models.prequential` for a replay, and the promotion gate's):
events are fed in time order; a **scored** event ``e = (u, i, t)`` is scored against the
list ``u`` had just before ``e``, its rank of ``i`` giving HR/NDCG@k
(`models.metrics`); no list -> a miss. Lists are built as the worker builds them:

- the user context is what ``streams.state.UserState.context`` gives: the last ``window``
  events of any type (oldest first), excluding purchases and the last ``exclude_recent``
  window items;
- the model learns every event (scored or not) through ``learn``, with the user's window
  before it, and hears of catalog items through ``update_items`` once they are released;
- events are handled in micro-batches of ``batch``: every list of a batch is made by the
  model as it stood at the batch's start (the worker scores a batch at once), from each
  event's own prior context, then the batch is learned; items are announced at the
  batch's start if released by its first event.

>>> from streamrec.models.popularity import Popularity
>>> events = [Event("u", "a", "view", 1.0), Event("v", "a", "view", 2.0), Event("w", "b", "view", 3.0)]
>>> [(o.user_id, o.rank) for o in simulate(Popularity(), events, [], scored_from=1, config=StreamConfig(batch=1))]
[('v', 1), ('w', inf)]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.models import metrics
from streamrec.models.base import Recommender
from streamrec.types import WINDOW, Event, Interaction, Item, UserContext

# The worker's defaults (settings.window, settings.exclude_recent, settings.k, batch_max).
EXCLUDE_RECENT = 50
K = 10
BATCH = 256


@dataclass(frozen=True)
class StreamConfig:
    window: int = WINDOW
    exclude_recent: int = EXCLUDE_RECENT
    k: int = K
    batch: int = BATCH


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scored event: who, what, when, and the rank of ``item_id`` in the list seen (inf: miss)."""

    user_id: str
    item_id: str
    ts: float
    rank: float


@dataclass
class UserWindows:
    """Each user's window and purchases, as `streams.state.UserState` keeps them.

    >>> users = UserWindows(window=2)
    >>> for item, kind in (("a", "purchase"), ("b", "view"), ("c", "view")):
    ...     users.apply(Event("u", item, kind, 0.0))
    >>> c = users.context("u", exclude_recent=1)
    >>> [i.item_id for i in c.window], sorted(c.exclude)
    (['b', 'c'], ['a', 'c'])
    """

    window: int = WINDOW
    windows: defaultdict[str, list[Interaction]] = field(default_factory=lambda: defaultdict(list))
    purchased: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def apply(self, event: Event) -> None:
        recent = self.windows[event.user_id]
        recent.append(Interaction(event.item_id, event.event_type, event.ts))
        del recent[: -self.window]
        if event.event_type == "purchase":
            self.purchased[event.user_id].add(event.item_id)

    def context(self, user_id: str, exclude_recent: int) -> UserContext:
        recent = tuple(self.windows.get(user_id, ()))
        excluded = {i.item_id for i in recent[-exclude_recent:]} if exclude_recent else set()
        return UserContext(user_id, recent, frozenset(self.purchased.get(user_id, set()) | excluded))


def simulate(
    model: Recommender,
    events: Sequence[Event],
    catalog: Iterable[tuple[float, Item]] | Sequence[Item],
    scored_from: int,
    config: StreamConfig = StreamConfig(),
) -> list[Outcome]:
    """Outcomes of ``events[scored_from:]`` (``events`` in time order), by the rule above.

    ``catalog``: ``(release time, item)`` pairs, or plain items (all known from the start).
    """
    releases = sorted(((-np.inf, c) if isinstance(c, Item) else c for c in catalog), key=lambda r: r[0])
    announced, users, outcomes = 0, UserWindows(config.window), []
    for start in range(0, len(events), config.batch):
        batch = events[start : start + config.batch]
        fresh = [item for at, item in releases[announced:] if at <= batch[0].ts]
        if fresh:
            model.update_items(fresh)
            announced += len(fresh)
        contexts = []
        for event in batch:
            contexts.append(users.context(event.user_id, config.exclude_recent))
            users.apply(event)
        scored = [n for n in range(len(batch)) if start + n >= scored_from]
        if scored:
            lists = model.recommend([contexts[n] for n in scored], config.k)
            for n, ranked in zip(scored, lists, strict=True):
                e = batch[n]
                rank = metrics.hit_rank([i for i, _ in ranked], e.item_id)
                outcomes.append(Outcome(e.user_id, e.item_id, e.ts, rank))
        for event, context in zip(batch, contexts, strict=True):
            model.learn(context, Interaction(event.item_id, event.event_type, event.ts))
    return outcomes


def per_user_ndcg(outcomes: Iterable[Outcome], k: int = K) -> dict[str, float]:
    """Each user's mean NDCG@k over their scored events (the unit the promotion gate resamples)."""
    sums: defaultdict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        sums[o.user_id].append(metrics.ndcg(o.rank, k))
    return {user: float(np.mean(values)) for user, values in sums.items()}


def over_time(outcomes: Sequence[Outcome], n_windows: int, k: int = K) -> list[float]:
    """NDCG@k per equal span of event time (empty spans: nan), for "does it fade" tables."""
    if not outcomes:
        return []
    ts = np.asarray([o.ts for o in outcomes])
    gains = np.asarray([metrics.ndcg(o.rank, k) for o in outcomes])
    edges = np.linspace(ts.min(), ts.max(), n_windows + 1)
    which = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, n_windows - 1)
    return [float(gains[which == w].mean()) if (which == w).any() else float("nan") for w in range(n_windows)]
