"""A/B experiments: arms, the stable user -> arm assignment, and online metrics per arm.

**Arms.** An `Experiment` has a name and two or more arms, each a recommender spec (any
`models.registry` name, ``+tail@knob`` variants included) with a traffic share; the
first arm is the **control**. A user's arm is fixed by a hash of (experiment, user id):
SHA-256 (stable across processes and Python versions, unlike ``hash``) read as a
uniform ``u`` in [0, 1), which falls into the arm whose cumulative share interval holds it.
A new experiment name reshuffles everyone; a user never changes arm within one.

**Recommending.** `ArmedRecommender` is one `Recommender` made of the arms': each user
is scored by their arm's recommender; every arm learns every event (the item-side
learning is shared, as the user state is). A ``X+tail@k`` arm whose ``X`` is another
arm wraps that arm's very model, so it is not learned twice.

**Online metrics** (prequential, as `models.prequential`): each scored event ``(u, i)``
is ranked in the list ``u`` was shown before it, ``seen``: HR/NDCG/MRR@10 by
`models.metrics`, a miss if no list was shown yet. Per arm, `Tally` accumulates per user
the events and their gains, and the top-10 items of every seen list (one impression per
scored event); coverage@10 is the share of the catalog shown at least once, tail
share@10 the share of impressions outside the head (`models.metrics.head_items`). Each
metric's estimate is the event-level figure a backtest row reports, its 95% interval the
per-user bootstrap of `models.intervals` (users contribute many events), and each
treatment arm's difference from control resamples the two arms' users independently.

>>> e = parse_experiment("tail-test=control:popularity:50,tail:popularity+tail@0.5:50", known=lambda s: True)
>>> [(a.name, a.recommender, a.share) for a in e.arms], e.control.name
([('control', 'popularity', 0.5), ('tail', 'popularity+tail@0.5', 0.5)], 'control')
>>> arm_of(e, "u1") == arm_of(e, "u1"), sorted({arm_of(e, f"u{n}") for n in range(20)})
(True, ['control', 'tail'])
>>> t = Tally()
>>> t.add("control", "u1", ("a", "b"), ["b"]); t.add("tail", "u2", None, ["a"])
>>> s = t.summary(e, catalog_size=4)
>>> round(s["arms"]["control"]["ndcg@10"]["estimate"], 4), s["arms"]["tail"]["hr@10"]["estimate"]
(0.6309, 0.0)
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from streamrec.models import intervals, metrics, promotion, registry
from streamrec.models.base import Recommender
from streamrec.models.intervals import Interval, Statistic
from streamrec.models.rerank import TAIL, TailRerank
from streamrec.types import MAX_ID_CHARS, Explanation, Interaction, Item, Ranked, UserContext

K = 10
ACCURACY = ("hr@10", "ndcg@10", "mrr@10")
EXPOSURE = ("coverage@10", "tail_share@10")
METRICS = (*ACCURACY, *EXPOSURE)
GAINS: dict[str, Callable[[float, int], float]] = {"hr@10": metrics.hr, "ndcg@10": metrics.ndcg, "mrr@10": metrics.mrr}
# Shares are given as weights (50/50, 0.9/0.1) and normalised; they must sum to about this.
SHARE_TOLERANCE = 1e-9
# Arms per experiment: each one costs a bootstrap per summary (`serving.experiments`) and
# splits the traffic further; beyond a handful no arm gets enough users to decide on.
MIN_ARMS, MAX_ARMS = 2, 16
IDENTIFIER = f"1 to {MAX_ID_CHARS} printable characters, no surrounding spaces"
JSON_SHAPE = '{"name": ..., "arms": [{"name": ..., "recommender": ..., "share": ... (optional)}, ...]}'
# One arm as the setting gives it, before any check: (name, recommender spec, share or None).
RawArm = tuple[Any, Any, Any]
HASH_BYTES = 8
# Champion/challenger (`decide`): the margin and minimum sample of the promotion gate
# (`models.promotion`), applied online to the challenger arm's NDCG@10 difference.
MARGIN = promotion.MARGIN
MIN_USERS = promotion.MIN_USERS
DECIDED_ON = "ndcg@10"
SEED = intervals.SEED
# Coverage's dense users x items-shown matrix up to this many cells (float32: 100 MB), sparse beyond.
DENSE_CELLS = 25_000_000


@dataclass(frozen=True)
class Arm:
    name: str
    recommender: str
    share: float


@dataclass(frozen=True)
class Experiment:
    """A name and its arms; the first arm is the control."""

    name: str
    arms: tuple[Arm, ...]

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arms": [vars(a) for a in self.arms]}


def parse_experiment(text: str, known: Callable[[str], bool] = registry.known) -> Experiment:
    """An experiment from its setting: ``name=arm:spec[:share],arm:spec[:share],...``
    (shares default to equal) or the JSON of `Experiment.as_dict`; ``known`` checks specs
    (default: `models.registry.known`). Anything else is a `ValueError` saying what is wrong.

    >>> parse_experiment("x=a:popularity", known=lambda s: True)
    Traceback (most recent call last):
    ...
    ValueError: experiment 'x' needs 2 to 16 arms, got 1
    """
    text = text.strip()
    if text.startswith("{"):
        name, raw = _from_json(text)
    else:
        name, sep, arms_text = text.partition("=")
        if not sep:
            raise ValueError(f"experiment {text!r:.80}: expected name=arm:recommender[:share],...")
        name, raw = name.strip(), [_arm_parts(part) for part in arms_text.split(",") if part.strip()]
    return _validated(name, raw, known)


def _from_json(text: str) -> tuple[Any, list[RawArm]]:
    """The name and arms of the JSON form, as given (`_validated` checks their types)."""
    try:
        data = orjson.loads(text)
        return data["name"], [(a["name"], a["recommender"], a.get("share")) for a in data["arms"]]
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"experiment: not valid JSON ({exc})") from None
    except (KeyError, TypeError, AttributeError):
        raise ValueError(f"experiment: expected JSON {JSON_SHAPE}") from None


def _arm_parts(part: str) -> RawArm:
    """``arm:spec[:share]`` (a spec never holds a colon)."""
    pieces = [p.strip() for p in part.split(":")]
    if len(pieces) not in (2, 3):
        raise ValueError(f"experiment arm {part!r:.80}: expected arm:recommender[:share]")
    if len(pieces) == 2:
        return pieces[0], pieces[1], None
    try:
        return pieces[0], pieces[1], float(pieces[2])
    except ValueError:
        raise ValueError(f"experiment arm {part!r:.80}: share {pieces[2]!r:.40} is not a number") from None


def _validated(name: Any, raw: Sequence[RawArm], known: Callable[[str], bool]) -> Experiment:
    """An `Experiment` of ``raw`` arms, or a `ValueError`: names and arms travel on every list
    (`streams.contracts`), so they must be identifiers a reader accepts unchanged."""
    if not is_identifier(name):
        raise ValueError(f"experiment name {name!r:.80}: {IDENTIFIER}")
    if not MIN_ARMS <= len(raw) <= MAX_ARMS:
        raise ValueError(f"experiment {name!r} needs {MIN_ARMS} to {MAX_ARMS} arms, got {len(raw)}")
    names = [arm for arm, _, _ in raw]
    if not all(map(is_identifier, names)) or len(set(names)) != len(names):
        raise ValueError(f"experiment {name!r}: arm names must be distinct, each {IDENTIFIER}; got {names!r:.200}")
    for arm, spec, _ in raw:
        if not isinstance(spec, str) or not known(spec):
            raise ValueError(f"experiment {name!r}, arm {arm!r}: unknown recommender {spec!r:.80}")
    given = [share for _, _, share in raw]
    if any(s is None for s in given) and any(s is not None for s in given):
        raise ValueError(f"experiment {name!r}: give every arm a share, or none")
    shares = [1.0 if s is None else s for s in given]
    if not all(isinstance(s, int | float) and not isinstance(s, bool) and np.isfinite(s) and s > 0 for s in shares):
        raise ValueError(f"experiment {name!r}: shares must be positive numbers, got {shares!r:.200}")
    total = sum(shares)
    if not np.isfinite(total) or min(shares) / total <= 0:  # 1e308s overflow; 1e-300 of 1e300 is 0
        raise ValueError(f"experiment {name!r}: shares out of range, got {shares}")
    return Experiment(name, tuple(Arm(a, spec, s / total) for (a, spec, _), s in zip(raw, shares, strict=True)))


def is_identifier(name: Any) -> bool:
    """Whether ``name`` is usable as an experiment's or arm's name (see `IDENTIFIER`).

    >>> is_identifier("tail-test"), is_identifier(" a"), is_identifier("x" * 300), is_identifier(3)
    (True, False, False, False)
    """
    return isinstance(name, str) and 0 < len(name) <= MAX_ID_CHARS and name.strip() == name and name.isprintable()


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) from ``parts``, the same in every process.

    >>> unit_hash("exp", "u1") == unit_hash("exp", "u1") != unit_hash("exp", "u2")
    True
    """
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:HASH_BYTES], "big") / 2 ** (8 * HASH_BYTES)


def arm_of(experiment: Experiment, user_id: str) -> str:
    """The arm of ``user_id``: where its hash falls among the cumulative shares."""
    bounds = list(itertools.accumulate(a.share for a in experiment.arms))
    index = bisect.bisect_right(bounds, unit_hash(experiment.name, user_id))
    return experiment.arms[min(index, len(experiment.arms) - 1)].name


class ArmedRecommender(Recommender):
    """Each user scored by their arm's recommender; every arm learns every event."""

    name = "experiment"

    def __init__(self, experiment: Experiment, arms: Mapping[str, Recommender]) -> None:
        self.experiment = experiment
        self.arms = dict(arms)
        distinct = list({id(r): r for r in self.arms.values()}.values())
        # A re-ranker over another arm's model learns through that model: skip it.
        self.learners = [r for r in distinct if not (isinstance(r, TailRerank) and r.base in distinct)]

    @classmethod
    def build(cls, experiment: Experiment, make: Callable[[str], Recommender]) -> ArmedRecommender:
        """One model per distinct spec; ``X+tail@k`` over an arm's ``X`` wraps that arm's model."""
        built: dict[str, Recommender] = {}
        specs = [a.recommender for a in experiment.arms]
        for spec in sorted(set(specs), key=lambda s: TAIL in s):  # bases first
            name, pin, version = spec.partition(registry.PIN)
            base, tail, knob = name.partition(TAIL + "@")
            shared = base + pin + version  # the arm of the same model version, if any
            built[spec] = TailRerank(built[shared], float(knob)) if tail and shared in built else make(spec)
        return cls(experiment, {a.name: built[a.recommender] for a in experiment.arms})

    @property
    def version(self) -> str:
        return f"{self.experiment.name}:" + ",".join(f"{arm}={r.version}" for arm, r in self.arms.items())

    def arm_of(self, user_id: str) -> str:
        return arm_of(self.experiment, user_id)

    def of(self, user_id: str) -> Recommender:
        return self.arms[self.arm_of(user_id)]

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        for model in self.learners:
            model.learn(user, interaction)

    def update_items(self, items: Iterable[Item]) -> None:
        items = list(items)
        for model in self.learners:
            model.update_items(items)

    def item_state(self) -> dict[str, Any]:
        """Every arm's item-side statistics with its model's class (a model shared by two
        arms is one object in both, and pickles once)."""
        return {arm: (type(model).__name__, model.item_state()) for arm, model in self.arms.items()}

    def load_item_state(self, state: Mapping[str, Any]) -> None:
        """Take over `item_state`; all or nothing: ValueError if any arm's model differs."""
        found = {arm: state.get(arm, (None, None))[0] for arm in self.arms}
        if found != {arm: type(model).__name__ for arm, model in self.arms.items()}:
            raise ValueError(f"item statistics of other arms' models: {found}")
        for arm, model in self.arms.items():
            model.load_item_state(state[arm][1])

    def carry_over(self, previous: Recommender) -> None:
        """Each arm from the same arm of ``previous``, or from ``previous`` itself if it is no
        experiment (a champion/challenger trial starting, `models.challenger`)."""
        for arm, model in self.arms.items():
            if not isinstance(previous, ArmedRecommender):
                model.carry_over(previous)
            elif arm in previous.arms:
                model.carry_over(previous.arms[arm])

    def _groups(self, users: Sequence[UserContext]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for n, user in enumerate(users):
            groups.setdefault(self.arm_of(user.user_id), []).append(n)
        return groups

    def embed(self, users: Sequence[UserContext]) -> np.ndarray | None:
        """Vectors of each arm's model; None unless every arm involved gives them (same width)."""
        parts = {arm: self.arms[arm].embed([users[n] for n in rows]) for arm, rows in self._groups(users).items()}
        found = [p for p in parts.values() if p is not None]
        if not users or len(found) < len(parts) or len({p.shape[1] for p in found}) > 1:
            return None
        out = np.empty((len(users), found[0].shape[1]), dtype=found[0].dtype)
        for arm, rows in self._groups(users).items():
            out[rows] = parts[arm]
        return out

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        out: list[Ranked] = [[] for _ in users]
        for arm, rows in self._groups(users).items():
            for n, ranked in zip(rows, self.arms[arm].recommend([users[n] for n in rows], k), strict=True):
                out[n] = ranked
        return out

    def explain(self, user: UserContext, ranked: Ranked) -> list[Explanation]:
        return self.of(user.user_id).explain(user, ranked)


@dataclass
class ArmTally:
    """One arm's outcomes, per user: events and their gains, and the items shown (per impression)."""

    index: dict[str, int] = field(default_factory=dict)
    sums: list[list[float]] = field(default_factory=list)  # per user: events, then one sum per ACCURACY metric
    shown: list[Counter[str]] = field(default_factory=list)
    lists: int = 0

    def add(self, user_id: str, seen: Sequence[str] | None, items: Sequence[str]) -> None:
        row = self.index.get(user_id)
        if row is None:
            row = self.index[user_id] = len(self.sums)
            self.sums.append([0.0] * (1 + len(ACCURACY)))
            self.shown.append(Counter())
        sums, top = self.sums[row], tuple(seen or ())[:K]
        for item in items:
            rank = metrics.hit_rank(top, item) if top else metrics.MISS
            sums[0] += 1
            for n, metric in enumerate(ACCURACY, 1):
                sums[n] += GAINS[metric](rank, K)
            if top:
                self.lists += 1
                self.shown[row].update(top)

    def statistics(self, head: set[str], catalog_size: int) -> dict[str, Statistic]:
        """Each metric as a statistic of weighted users (`models.intervals`)."""
        sums = np.asarray(self.sums, dtype=np.float64).reshape(-1, 1 + len(ACCURACY))
        out = {metric: intervals.ratio_of(sums[:, n], sums[:, 0]) for n, metric in enumerate(ACCURACY, 1)}
        slots = np.array([sum(c.values()) for c in self.shown], dtype=np.float64)
        tail = np.array([sum(n for i, n in c.items() if i not in head) for c in self.shown], dtype=np.float64)
        out["tail_share@10"] = intervals.ratio_of(tail, slots)
        out["coverage@10"] = coverage_of(self.shown, catalog_size)
        return out

    def bootstrap(
        self, head: set[str], catalog_size: int, resamples: int = intervals.RESAMPLES, seed: intervals.Seed = SEED
    ) -> intervals.Bootstrap:
        """Every metric of `METRICS` on the same per-user resamples."""
        statistics = self.statistics(head, catalog_size)
        return intervals.bootstrap(statistics, len(self.sums), resamples, seed, centred=("coverage@10",))

    def intervals(
        self, head: set[str], catalog_size: int, resamples: int = intervals.RESAMPLES, seed: intervals.Seed = SEED
    ) -> dict[str, Interval]:
        """Each of `METRICS` with its per-user bootstrap interval."""
        found = self.bootstrap(head, catalog_size, resamples, seed)
        return {m: found.interval(m) for m in METRICS}


def coverage_of(shown: Sequence[Counter[str]], catalog_size: int, dense_cells: int | None = None) -> Statistic:
    """Share of the catalog shown to at least one (drawn) user.

    Up to `DENSE_CELLS` users x items shown, a 0/1 matrix and one matrix product per chunk
    of resamples (BLAS: fastest); beyond, sparse: one column per (item, user) pair shown,
    OR-ed per item (`numpy.ufunc.reduceat`), so memory follows what was shown.
    Resampling draws ~63% of the distinct users, so coverage's bootstrap values sit below
    the estimate: `ArmTally.bootstrap` centres them on it (`models.intervals.bootstrap`).

    >>> shown, w = [Counter({"a": 1}), Counter({"a": 2, "b": 1})], np.array([[1.0, 1.0], [2.0, 0.0]])
    >>> coverage_of(shown, 4)(w).tolist(), coverage_of(shown, 4, dense_cells=0)(w).tolist()
    ([0.5, 0.25], [0.5, 0.25])
    """
    pairs = sorted((item, row) for row, counts in enumerate(shown) for item in counts)
    names = [item for item, _ in pairs]
    starts = np.array([n for n in range(len(names)) if n == 0 or names[n] != names[n - 1]], dtype=np.int64)
    users = np.array([row for _, row in pairs], dtype=np.int64)
    scale = 1.0 / max(catalog_size, 1)
    if not pairs:
        return lambda w: np.zeros(len(w))
    if len(shown) * len(starts) <= (DENSE_CELLS if dense_cells is None else dense_cells):
        seen = np.zeros((len(shown), len(starts)), dtype=np.float32)
        seen[users, np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(users)]))] = 1.0
        return lambda w: ((w > 0).astype(np.float32) @ seen > 0).sum(axis=1) * scale
    return lambda w: np.maximum.reduceat((w > 0)[:, users], starts, axis=1).sum(axis=1) * scale


@dataclass
class Tally:
    """Every arm's outcomes, and what users acted on (all arms: the live head, if none is given)."""

    arms: dict[str, ArmTally] = field(default_factory=dict)
    acted: Counter[str] = field(default_factory=Counter)

    def add(self, arm: str, user_id: str, seen: Sequence[str] | None, items: Sequence[str]) -> None:
        """Score each of ``items`` (the user's events, in order) against ``seen``, the list shown before them."""
        self.arms.setdefault(arm, ArmTally()).add(user_id, seen, items)
        self.acted.update(items)

    def summary(
        self,
        experiment: Experiment,
        catalog_size: int,
        head: set[str] | None = None,
        resamples: int = intervals.RESAMPLES,
        seed: int = SEED,
    ) -> dict[str, Any]:
        """Per arm: each metric's estimate and interval, lists and users; per treatment arm
        the difference from control (``difference``). JSON-ready."""
        head = metrics.head_items(self.acted) if head is None else head
        empty = ArmTally()
        stats = {a.name: self.arms.get(a.name, empty) for a in experiment.arms}
        seeds = np.random.SeedSequence(seed).spawn(len(stats))  # arms are resampled independently
        boots = {
            arm: t.bootstrap(head, catalog_size, resamples, s) for (arm, t), s in zip(stats.items(), seeds, strict=True)
        }
        arms: dict[str, Any] = {}
        for arm, tally in stats.items():
            arms[arm] = {
                "recommender": experiment.arm(arm).recommender,
                "share": experiment.arm(arm).share,
                "users": len(tally.sums),
                "events": int(sum(s[0] for s in tally.sums)),
                "lists": tally.lists,
                **{m: _json(boots[arm].interval(m)) for m in METRICS},
            }
        control = experiment.control.name
        for arm in arms:
            if arm != control:
                arms[arm]["difference"] = {m: _json(boots[arm].minus(boots[control], m)) for m in METRICS}
                arms[arm]["decision"] = decide(arms[arm], arms[control])
        return {"experiment": experiment.as_dict(), "control": control, "arms": arms}


def decide(challenger: Mapping[str, Any], champion: Mapping[str, Any], min_users: int = MIN_USERS) -> dict[str, str]:
    """Champion/challenger on a summary's arms: with fewer than ``min_users`` users in either
    arm, **wait**; then **promote** iff the challenger's NDCG@10 is not worse than the
    champion's by more than `MARGIN` of it with 95% confidence (the difference interval's
    low end at or above ``-MARGIN * champion``), else **retire**.

    >>> def arm(users, low):
    ...     diff = {"estimate": 0.0, "low": low, "high": 0.1}
    ...     return {"users": users, "ndcg@10": {"estimate": 0.1}, "difference": {"ndcg@10": diff}}
    >>> [decide(arm(50, low), arm(50, 0.0))["action"] for low in (-0.001, -0.02)]
    ['promote', 'retire']
    >>> decide(arm(5, 0.0), arm(50, 0.0))["action"]
    'wait'
    """
    users = min(challenger["users"], champion["users"])
    if users < min_users:
        return {"action": "wait", "reason": f"{users} users in the smaller arm, fewer than {min_users}"}
    diff, base = challenger["difference"][DECIDED_ON], champion[DECIDED_ON]["estimate"]
    if diff["low"] is None or base is None:
        return {"action": "wait", "reason": "no scored events yet"}
    evidence = f"{DECIDED_ON} {diff['estimate']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}] vs {base:.4f}"
    if diff["low"] >= -MARGIN * base:
        return {"action": "promote", "reason": f"not worse by more than {MARGIN:.0%}: {evidence}"}
    return {"action": "retire", "reason": f"may be worse by more than {MARGIN:.0%}: {evidence}"}


def _json(found: Interval) -> dict[str, float | None]:
    """An interval for JSON: nan (no data) as None."""
    return {k: (None if np.isnan(v) else float(v)) for k, v in found.as_dict().items() if k != "users"}


def prequential_tally(outcomes: Iterable[Any], arm_of_user: Callable[[str], str], tally: Tally | None = None) -> Tally:
    """A `Tally` of `models.prequential.Outcome`-s (``event``, ``seen``): the replay's outcomes."""
    tally = tally or Tally()
    for o in outcomes:
        tally.add(arm_of_user(o.event.user_id), o.event.user_id, o.seen, [o.event.item_id])
    return tally


def interval_columns(
    outcomes: Iterable[Any], head: set[str], catalog_size: int, resamples: int = intervals.RESAMPLES
) -> dict[str, float]:
    """``<metric>_low`` and ``<metric>_high`` of every metric of `METRICS` over ``outcomes``
    (a backtest row or time window): the same intervals as an experiment's arms."""
    tally = prequential_tally(outcomes, lambda _: "all").arms.get("all", ArmTally())
    found = tally.intervals(head, catalog_size, resamples)
    return {f"{m}_{end}": getattr(iv, end) for m, iv in found.items() for end in ("low", "high")}
