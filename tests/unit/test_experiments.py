"""A/B experiments: the arm assignment, the per-user intervals (A/A calibration), arms' models."""

from __future__ import annotations

import pickle
from collections import Counter
from functools import cache

import numpy as np
import pytest

from streamrec.models import intervals, metrics, prequential
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.experiments import (
    ArmedRecommender,
    Tally,
    arm_of,
    interval_columns,
    parse_experiment,
    prequential_tally,
    unit_hash,
)
from streamrec.models.online_eval import Outcome, simulate
from streamrec.models.popularity import Popularity
from streamrec.models.rerank import TailRerank
from streamrec.streams.contracts import parse_recommendation, recommendation_message
from streamrec.streams.sources import movielens_events, movielens_items
from streamrec.types import MAX_ID_CHARS, Event, Interaction, UserContext

# A bounded slice of ml-100k: its last 30k events, the newest 10k scored (~170 users): ~2 s.
SLICE_FROM, SCORED_FROM = 70_000, 20_000
SEEDS = 20


def test_the_hash_is_pinned_so_assignments_survive_restarts_and_versions() -> None:
    assert unit_hash("exp", "u1") == pytest.approx(0.04550784508201869, abs=1e-15)


def test_arms_follow_their_shares_and_a_user_never_changes_arm() -> None:
    e = parse_experiment("x=big:popularity:80,small:cooccurrence:20")
    arms = Counter(arm_of(e, f"user-{n}") for n in range(20_000))
    assert arms["big"] / 20_000 == pytest.approx(0.8, abs=0.01)
    assert all(arm_of(e, f"user-{n}") == arm_of(e, f"user-{n}") for n in range(100))
    reshuffled = parse_experiment("y=big:popularity:80,small:cooccurrence:20")
    assert sum(arm_of(e, f"user-{n}") != arm_of(reshuffled, f"user-{n}") for n in range(1000)) > 200


def test_the_json_form_and_the_compact_form_agree() -> None:
    compact = parse_experiment("t=control:fusion:1,tail:fusion+tail@0.5:3")
    assert (
        parse_experiment(
            '{"name": "t", "arms": [{"name": "control", "recommender": "fusion", "share": 1},'
            ' {"name": "tail", "recommender": "fusion+tail@0.5", "share": 3}]}'
        )
        == compact
    )
    assert [a.share for a in compact.arms] == [0.25, 0.75]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("t=a:fusion,b:nope", "unknown recommender 'nope'"),
        ("t=a:fusion,a:popularity", "distinct"),
        ("t=a:fusion:1,b:popularity", "every arm a share"),
        ("t=a:fusion:1,b:popularity:-1", "positive"),
        ("t=a:fusion", "2 to 16 arms"),
        ("a:fusion,b:popularity", "expected name="),
        ("t=a:fusion:abc,b:popularity:1", "share 'abc' is not a number"),
        ("t=a:fusion:nan,b:popularity:1", "positive"),
        ("t=a:fusion:inf,b:popularity:1", "positive"),
        ("t=a:fusion:1e308,b:popularity:1e308", "out of range"),  # the sum overflows: every share 0
        ("t=" + ",".join(f"a{n}:popularity" for n in range(17)), "2 to 16 arms"),
        ("x" * 257 + "=a:fusion,b:popularity", "experiment name"),
        ('{"name": "t"}', "expected JSON"),
        ('{"name": "t", "arms": "ab"}', "expected JSON"),
        ('{"name": "t", "arms": [', "not valid JSON"),
        ('{"name": "t", "arms": [{"name": "a", "recommender": 5}, {"name": "b", "recommender": "popularity"}]}', "5"),
        (
            '{"name": "t", "arms": [{"name": 1, "recommender": "fusion"}, {"name": 2, "recommender": "fusion"}]}',
            "arm names",
        ),
        (
            '{"name": "t", "arms": [{"name": " a", "recommender": "fusion"}, {"name": "b", "recommender": "fusion"}]}',
            "arm names",
        ),
        (
            '{"name": "t", "arms": [{"name": "a", "recommender": "fusion", "share": true},'
            ' {"name": "b", "recommender": "fusion", "share": [1]}]}',
            "positive numbers",
        ),
    ],
)
def test_bad_experiments_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_experiment(text)


def test_names_an_experiment_accepts_are_ones_every_list_reader_accepts() -> None:
    """The worker puts the names on every list; one the contract refused would lose them all."""
    longest = "x" * MAX_ID_CHARS
    e = parse_experiment(f"{longest}=é:popularity,{longest[:-1]}y:cooccurrence")
    for arm in e.arms:
        message = recommendation_message("u1", [], Event("u1", "i1", "view", 1.0), "m", 1, 2.0, None,
                                         {"experiment": e.name, "arm": arm.name})  # fmt: skip
        assert (parse_recommendation(message).experiment, parse_recommendation(message).arm) == (e.name, arm.name)


@cache
def _real_outcomes() -> tuple[Outcome, ...]:
    """Prequential outcomes of co-occurrence on the ml-100k slice (as the worker would score them)."""
    events = movielens_events()[SLICE_FROM:]
    return tuple(simulate(CoOccurrence(), events, movielens_items(), scored_from=SCORED_FROM))


def test_an_a_a_experiment_covers_zero_in_at_least_19_of_20_seeds() -> None:
    """Both arms the same recommender (`ArmedRecommender` shares one model between equal
    specs, so the outcomes are one simulation's); each seed re-draws the assignment."""
    outcomes = _real_outcomes()
    users, sums, counts = intervals.per_user_sums(
        np.array([o.user_id for o in outcomes]), np.array([metrics.ndcg(o.rank, 10) for o in outcomes])
    )
    covered = []
    for seed in range(SEEDS):
        e = parse_experiment(f"aa-{seed}=a:cooccurrence,b:cooccurrence")
        b = np.array([arm_of(e, u) == "b" for u in users])
        found = intervals.difference_interval(
            intervals.ratio_of(sums[b], counts[b]), int(b.sum()), intervals.ratio_of(sums[~b], counts[~b]),
            int((~b).sum()), seed=seed,
        )  # fmt: skip
        covered.append(found.covers(0.0))
    assert sum(covered) >= 19, covered


def test_per_user_intervals_are_wider_than_per_event_ones_would_be() -> None:
    """Why users are resampled: events of one user are alike, so treating them as
    independent understates the noise."""
    outcomes = _real_outcomes()
    gains = np.array([metrics.ndcg(o.rank, 10) for o in outcomes])
    users, sums, counts = intervals.per_user_sums(np.array([o.user_id for o in outcomes]), gains)
    clustered = intervals.interval(intervals.ratio_of(sums, counts), len(users))
    naive = intervals.mean_interval(gains)
    assert clustered.estimate == pytest.approx(naive.estimate)
    assert clustered.high - clustered.low > 1.5 * (naive.high - naive.low)


def test_a_real_difference_is_found() -> None:
    rng = np.random.default_rng(1)
    control, treatment = rng.uniform(0, 0.4, 300), rng.uniform(0.1, 0.5, 300)
    found = intervals.difference_interval(
        intervals.mean_of(treatment), 300, intervals.mean_of(control), 300, resamples=500
    )
    assert 0 < found.low < 0.1 < found.high


def _produced(user: str, item: str, n: int) -> prequential.Produced:
    return prequential.Produced(user, item, float(n), n, float(n))


def test_backtest_rows_and_experiment_arms_use_the_same_figures() -> None:
    """`interval_columns` brackets exactly the estimate `models.prequential.summarize` reports."""
    outcomes = [
        prequential.Outcome(_produced(f"u{n % 7}", f"i{n % 5}", n), seen=(f"i{n % 3}", "i1", "i4"), rank=0)
        for n in range(60)
    ]
    for o in outcomes:
        o.rank = metrics.hit_rank(o.seen or (), o.event.item_id)
    context = prequential.Context(catalog=[f"i{n}" for n in range(8)], train_counts=Counter({"i0": 5, "i1": 1}))
    row = prequential.summarize(outcomes, context)
    columns = interval_columns(outcomes, context.head, len(context.catalog), resamples=200)
    tally = prequential_tally(outcomes, lambda _: "all").arms["all"]
    estimates = {m: iv.estimate for m, iv in tally.intervals(context.head, len(context.catalog), 200).items()}
    for metric, estimate in estimates.items():
        assert estimate == pytest.approx(row[metric]), metric
        assert columns[f"{metric}_low"] <= estimate <= columns[f"{metric}_high"], metric


def test_a_summary_has_every_arm_and_differences_from_control() -> None:
    e = parse_experiment("t=a:popularity,b:cooccurrence")
    tally = Tally()
    for n in range(40):
        user = f"u{n}"
        tally.add(arm_of(e, user), user, ("x", "y"), ["x" if arm_of(e, user) == "b" else "z"])
    summary = tally.summary(e, catalog_size=10, resamples=200)
    assert summary["arms"]["b"]["hr@10"]["estimate"] == 1.0 and summary["arms"]["a"]["hr@10"]["estimate"] == 0.0
    assert summary["arms"]["b"]["difference"]["hr@10"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}
    assert "difference" not in summary["arms"]["a"]
    assert summary["arms"]["a"]["users"] + summary["arms"]["b"]["users"] == 40


def test_armed_recommender_routes_users_and_learns_a_shared_base_once() -> None:
    e = parse_experiment("t=plain:popularity,tail:popularity+tail@2", known=lambda _: True)
    armed = ArmedRecommender.build(e, lambda spec: Popularity())
    assert isinstance(armed.arms["tail"], TailRerank) and armed.arms["tail"].base is armed.arms["plain"]
    assert armed.learners == [armed.arms["plain"]]
    for item, n in (("hit", 3), ("mid", 2)):
        for _ in range(n):
            armed.learn(UserContext("u"), Interaction(item, "view", 0.0))
    users = [UserContext(f"u{n}") for n in range(30)]
    lists = armed.recommend(users, 1)
    for user, ranked in zip(users, lists, strict=True):
        assert armed.arm_of(user.user_id) == "tail" or ranked[0][0] == "hit"
    assert {armed.arm_of(u.user_id) for u in users} == {"plain", "tail"}
    assert armed.version == "t:plain=popularity,tail=popularity+tail@2"


def test_armed_item_statistics_survive_a_checkpoint_and_refuse_other_arms() -> None:
    e = parse_experiment("t=plain:popularity,co:cooccurrence", known=lambda _: True)
    make = {"popularity": Popularity, "cooccurrence": CoOccurrence}
    armed = ArmedRecommender.build(e, lambda spec: make[spec]())
    for user, item in (("a", "x"), ("a", "y"), ("b", "x"), ("b", "z")):
        armed.learn(UserContext(user, ()), Interaction(item, "view", 0.0))
    users = [UserContext(f"u{n}", (Interaction("x", "view", 0.0),)) for n in range(20)]
    restored = ArmedRecommender.build(e, lambda spec: make[spec]())
    restored.load_item_state(pickle.loads(pickle.dumps(armed.item_state())))
    assert restored.recommend(users, 3) == armed.recommend(users, 3)
    other = ArmedRecommender.build(e, lambda spec: Popularity())
    with pytest.raises(ValueError, match="other arms' models"):
        other.load_item_state(armed.item_state())
    assert other.recommend(users, 3) == [[] for _ in users]  # nothing half-loaded


def test_arms_may_pin_model_versions_and_a_tail_shares_only_its_own_version() -> None:
    old, new = "20261201T000000000000Z-00", "20261202T000000000000Z-00"
    e = parse_experiment(f"v=old:fusion#{old},new:fusion#{new},tail:fusion+tail@0.5#{new}")
    made: list[str] = []

    def make(spec: str) -> Popularity:
        made.append(spec)
        return Popularity()

    armed = ArmedRecommender.build(e, make)
    assert sorted(made) == [f"fusion#{old}", f"fusion#{new}"]
    assert isinstance(armed.arms["tail"], TailRerank) and armed.arms["tail"].base is armed.arms["new"]
    with pytest.raises(ValueError):
        parse_experiment(f"v=a:cooccurrence#{old},b:cooccurrence")  # nothing to pin: no artifact
    with pytest.raises(ValueError):
        parse_experiment("v=a:transformer#../../etc,b:transformer")
