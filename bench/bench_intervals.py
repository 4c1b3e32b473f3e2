"""Cost of an experiment summary (per-user bootstrap of every metric, both arms and the difference).

    python bench/bench_intervals.py

Synthetic outcomes: two 50/50 arms, users with ~30 scored events each, lists of 10 from a
1,682-item catalog (ml-100k's size). Prints the seconds one `Tally.summary` takes per
user count and resample count, and the cost of tallying one outcome: what the server pays
per list (`serving.experiments`) and per dashboard refresh (at most one summary per 5 s).
Then, on real prequential outcomes (co-occurrence on the last 30k events of ml-100k, the
newest 10k scored), the width of the per-user interval of NDCG@10 against the width a
per-event bootstrap would claim.
"""

from __future__ import annotations

import time

import numpy as np

from streamrec.models.experiments import Tally, arm_of, parse_experiment

CATALOG = 1682
EVENTS_PER_USER = 30
EXPERIMENT = parse_experiment("bench=a:popularity,b:cooccurrence")


def tally(users: int, seed: int = 0) -> tuple[Tally, float]:
    rng = np.random.default_rng(seed)
    items = [f"i{n}" for n in range(CATALOG)]
    popular = rng.zipf(1.3, size=users * EVENTS_PER_USER * 11) % CATALOG
    out, started, n = Tally(), time.perf_counter(), 0
    for u in range(users):
        user = f"u{u}"
        arm = arm_of(EXPERIMENT, user)
        for _ in range(EVENTS_PER_USER):
            seen = [items[i] for i in popular[n : n + 10]]
            out.add(arm, user, seen, [items[popular[n + 10]]])
            n += 11
    return out, (time.perf_counter() - started) / (users * EVENTS_PER_USER)


def clustering() -> None:
    from streamrec.models import intervals, metrics
    from streamrec.models.cooccurrence import CoOccurrence
    from streamrec.models.online_eval import simulate
    from streamrec.streams.sources import movielens_events, movielens_items

    outcomes = simulate(CoOccurrence(), movielens_events()[70_000:], movielens_items(), scored_from=20_000)
    gains = np.array([metrics.ndcg(o.rank, 10) for o in outcomes])
    users, sums, counts = intervals.per_user_sums(np.array([o.user_id for o in outcomes]), gains)
    clustered = intervals.interval(intervals.ratio_of(sums, counts), len(users))
    naive = intervals.mean_interval(gains)
    print(f"NDCG@10 {clustered.estimate:.4f} over {len(gains)} events of {len(users)} users:")
    print(f"  per-user interval [{clustered.low:.4f}, {clustered.high:.4f}] width {clustered.high - clustered.low:.4f}")
    print(f"  per-event interval [{naive.low:.4f}, {naive.high:.4f}] width {naive.high - naive.low:.4f}")
    print(f"  ratio {(clustered.high - clustered.low) / (naive.high - naive.low):.1f}x")


def main() -> None:
    print(f"{'users':>7} {'resamples':>9} {'summary s':>9} {'tally us/outcome':>16}")
    for users in (200, 1000, 5000):
        built, per_outcome = tally(users)
        for resamples in (500, 1000):
            started = time.perf_counter()
            built.summary(EXPERIMENT, CATALOG, resamples=resamples)
            print(f"{users:>7} {resamples:>9} {time.perf_counter() - started:>9.2f} {per_outcome * 1e6:>16.1f}")
    clustering()


if __name__ == "__main__":
    main()
