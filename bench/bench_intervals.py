"""Cost of an experiment summary (per-user bootstrap of every metric, both arms and the difference).

    python bench/bench_intervals.py

Synthetic outcomes: two 50/50 arms, users with ~30 scored events each, lists of 10 from a
1,682-item catalog (ml-100k's size). Prints the seconds one `Tally.summary` takes per
user count and resample count, and the cost of tallying one outcome: what the server pays
per list (`serving.experiments`) and per dashboard refresh (at most one summary per 5 s).
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


def main() -> None:
    print(f"{'users':>7} {'resamples':>9} {'summary s':>9} {'tally us/outcome':>16}")
    for users in (200, 1000, 5000):
        built, per_outcome = tally(users)
        for resamples in (500, 1000):
            started = time.perf_counter()
            built.summary(EXPERIMENT, CATALOG, resamples=resamples)
            print(f"{users:>7} {resamples:>9} {time.perf_counter() - started:>9.2f} {per_outcome * 1e6:>16.1f}")


if __name__ == "__main__":
    main()
