"""Confidence intervals for online and replayed metrics: the per-user (cluster) bootstrap.

**Why per user.** A user contributes many events, and their events are not independent:
a user the model suits scores high again and again. Resampling *events* treats them as
independent and gives intervals that are far too narrow (the effective sample is
nearer the number of users than the number of events). The unit that is sampled, by
traffic and by the arm assignment, is the user, so the users are resampled with
replacement, each carrying all of their events (the cluster bootstrap; Efron &
Tibshirani 1993, ch. 6; the "bootstrap over users" of online A/B testing).

Every statistic here is a function of per-user sums. A resample is a vector of
weights ``w`` (how often each of the ``n`` users was drawn: multinomial, ``sum w = n``),
and the statistic is evaluated on the weighted users:

- mean of per-user means (each user counts once, however active):
  :math:`\\hat\\theta(w) = \\sum_u w_u \\bar x_u / \\sum_u w_u`;
- event-level mean, clustered by user (a ratio estimator):
  :math:`\\hat\\theta(w) = \\sum_u w_u s_u / \\sum_u w_u n_u` with ``s_u`` the sum and
  ``n_u`` the count of the user's values (any ratio of per-user sums: tail share, ...);
- any other function of the weights (coverage: items shown to at least one drawn user).

With ``B`` resamples :math:`\\hat\\theta^{*1..B}`, the ``1 - \\alpha`` percentile interval is
their ``alpha/2`` and ``1 - alpha/2`` percentiles. A **difference between two arms**
(independent groups of users) resamples each arm's users on their own:
:math:`\\hat\\theta_T(w_T) - \\hat\\theta_C(w_C)`; a **paired difference** (two models
scored on the same users, the promotion gate) draws one ``w`` for both, so each user's
two scores stay together.

Vectorised: the resamples are one ``B x n`` weight matrix (in chunks bounded by
`MAX_CELLS`), the statistics matrix products; seeded, so a page refresh shows the same
interval for the same data.

>>> users = np.array([0.0, 1.0, 0.5, 0.5])
>>> mean_interval(users, resamples=2000).estimate
0.5
>>> iv = difference_interval(mean_of(users + 0.25), len(users), mean_of(users), len(users))
>>> round(iv.estimate, 4), iv.low < 0.25 < iv.high
(0.25, True)
>>> paired_interval(np.array([1.0, 1.0]), np.array([0.0, 0.0])).as_dict()
{'estimate': 1.0, 'low': 1.0, 'high': 1.0, 'users': 2}
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

# Bootstrap resamples: 1000 puts the interval ends within ~0.1 standard error of their limit.
RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 2020
# Largest weight matrix built at once (resamples x users): ~32 MB of float64, so a
# million users still bootstrap in bounded memory (in more, smaller chunks).
MAX_CELLS = 4_000_000

# A statistic of weighted users: weights (resamples x users) -> one value per resample.
Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    """An estimate with its percentile interval and the number of users behind it."""

    estimate: float
    low: float
    high: float
    users: int

    def as_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "users": self.users}

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


NO_DATA = Interval(float("nan"), float("nan"), float("nan"), 0)


def mean_of(per_user: np.ndarray) -> Statistic:
    """The mean of per-user values (each user counts once)."""
    values = np.asarray(per_user, dtype=np.float64)
    return lambda w: (w @ values) / w.sum(axis=1)


def ratio_of(sums: np.ndarray, counts: np.ndarray) -> Statistic:
    """``sum_u w_u s_u / sum_u w_u n_u``: an event-level mean (or any ratio) clustered by user.

    >>> ratio_of(np.array([3.0, 0.0]), np.array([3.0, 1.0]))(np.ones((1, 2))).tolist()
    [0.75]
    """
    num, den = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)

    def statistic(w: np.ndarray) -> np.ndarray:
        total = w @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w @ num) / np.where(total > 0, total, 1.0), np.nan)

    return statistic


def weights(users: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap weights in chunks: rows of how often each of ``users`` was drawn (sum = users).

    >>> [w.sum(axis=1).tolist() for w in weights(3, 2, np.random.default_rng(0))]
    [[3.0, 3.0]]
    """
    chunk = max(1, MAX_CELLS // max(users, 1))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(users, size=(rows, users)) + users * np.arange(rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=rows * users).reshape(rows, users).astype(np.float64)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


Seed = int | np.random.SeedSequence


@dataclass(frozen=True)
class Bootstrap:
    """Several statistics of one group of users, evaluated on the same resamples."""

    users: int
    estimates: dict[str, float]
    draws: dict[str, np.ndarray]

    def interval(self, name: str, confidence: float = CONFIDENCE) -> Interval:
        if not self.users:
            return NO_DATA
        return Interval(self.estimates[name], *_percentiles(self.draws[name], confidence), self.users)

    def minus(self, other: Bootstrap, name: str, confidence: float = CONFIDENCE) -> Interval:
        """This group's statistic minus ``other``'s, the two groups resampled independently."""
        if not self.users or not other.users:
            return NO_DATA
        estimate = self.estimates[name] - other.estimates[name]
        diff = self.draws[name] - other.draws[name]
        return Interval(estimate, *_percentiles(diff, confidence), self.users + other.users)


def bootstrap(
    statistics: Mapping[str, Statistic],
    users: int,
    resamples: int = RESAMPLES,
    seed: Seed = SEED,
    centred: Collection[str] = (),
) -> Bootstrap:
    """Every statistic on the same ``resamples`` draws of ``users`` users (give independent
    groups independent seeds: `np.random.SeedSequence.spawn`). The draws of statistics
    named in ``centred`` are shifted by the bootstrap's bias (``estimate - mean of draws``):
    for a statistic resampling biases, such as a count of distinct items (a resample
    holds ~63% of the distinct users), so that its interval brackets its estimate."""
    if not users:
        return Bootstrap(0, {}, {})
    rng = np.random.default_rng(seed)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    for w in weights(users, resamples, rng):
        for name, statistic in statistics.items():
            chunks[name].append(statistic(w))
    estimates = {name: float(statistic(np.ones((1, users)))[0]) for name, statistic in statistics.items()}
    draws = {name: np.concatenate(parts) for name, parts in chunks.items()}
    for name in centred:
        draws[name] += estimates[name] - float(np.nanmean(draws[name]))
    return Bootstrap(users, estimates, draws)


def interval(
    statistic: Statistic, users: int, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: Seed = SEED
) -> Interval:
    """The percentile interval of ``statistic`` over ``users`` users (none: `NO_DATA`)."""
    return bootstrap({"s": statistic}, users, resamples, seed).interval("s", confidence)


def difference_interval(
    treatment: Statistic,
    treatment_users: int,
    control: Statistic,
    control_users: int,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval:
    """Treatment minus control, two independent groups of users (arms), each resampled on its own."""
    seeds = np.random.SeedSequence(seed).spawn(2)
    t = bootstrap({"s": treatment}, treatment_users, resamples, seeds[0])
    return t.minus(bootstrap({"s": control}, control_users, resamples, seeds[1]), "s", confidence)


def mean_interval(
    per_user: np.ndarray, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED
) -> Interval:
    """The mean of per-user values with its interval."""
    return interval(mean_of(per_user), len(per_user), resamples, confidence, seed)


def paired_interval(
    candidate: np.ndarray,
    baseline: np.ndarray,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval:
    """Mean per-user difference ``candidate - baseline`` (aligned by user), users resampled as pairs."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    return mean_interval(diff, resamples, confidence, seed)


def per_user_sums(user_ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct users (sorted), each one's sum and count of ``values``: the clusters.

    >>> users, sums, counts = per_user_sums(np.array(["b", "a", "b"]), np.array([1.0, 2.0, 3.0]))
    >>> users.tolist(), sums.tolist(), counts.tolist()
    (['a', 'b'], [2.0, 4.0], [1.0, 2.0])
    """
    users, index = np.unique(np.asarray(user_ids), return_inverse=True)
    sums = np.bincount(index, weights=np.asarray(values, dtype=np.float64), minlength=len(users))
    counts = np.bincount(index, minlength=len(users)).astype(np.float64)
    return users, sums, counts
