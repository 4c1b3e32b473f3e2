"""What an A/B experiment adds to each published list, computed where the order is exact.

The worker knows the list it last published for a user (kept in the user's state,
`UserState.shown`): the user's events applied since are scored against it, in the
order they were applied. Each list then carries its ``experiment``, the user's ``arm``
and that ``outcome`` (`streams.contracts.ListOutcome`: the list seen, the items acted
on): the outcome travels with the list, keyed by user on the same partition, so a
reader never sees one without the other, and keeps per-user clustering for the
intervals (`models.experiments.Tally`). Per-arm sums go to Prometheus as well.
"""

from __future__ import annotations

from typing import Any

from streamrec.models import metrics
from streamrec.models.base import Recommender
from streamrec.models.experiments import GAINS, ArmedRecommender, K
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.state import UserState
from streamrec.types import Ranked


def list_fields(
    recommender: Recommender,
    user_id: str,
    state: UserState,
    acted: list[str],
    ranked: Ranked,
    worker_metrics: WorkerMetrics,
) -> tuple[str, dict[str, Any] | None]:
    """The ``model`` of the user's new list and its experiment fields (None: no experiment);
    remembers the list's top-K in ``state`` for the user's next events.

    >>> from streamrec.models.experiments import parse_experiment
    >>> from streamrec.models.popularity import Popularity
    >>> armed = ArmedRecommender.build(parse_experiment("t=a:popularity,b:popularity"), lambda _: Popularity())
    >>> state = UserState(shown=["x", "y"])
    >>> model, fields = list_fields(armed, "u1", state, ["y"], [("z", 1.0)], WorkerMetrics())
    >>> model, fields["outcome"], state.shown
    ('popularity', {'seen': ['x', 'y'], 'items': ['y']}, ['z'])
    """
    if not isinstance(recommender, ArmedRecommender):
        return recommender.version, None
    arm = recommender.arm_of(user_id)
    seen = state.shown or []
    state.shown = [item for item, _ in ranked[:K]]
    ranks = [metrics.hit_rank(seen, item) for item in acted]
    gains = {name: sum(GAINS[f"{name}@{K}"](r, K) for r in ranks) for name in ("hr", "ndcg", "mrr")}
    worker_metrics.experiment_scored(recommender.experiment.name, arm, len(acted), len(acted) if seen else 0, gains)
    outcome = {"seen": seen, "items": acted}
    return recommender.arms[arm].version, {"experiment": recommender.experiment.name, "arm": arm, "outcome": outcome}
