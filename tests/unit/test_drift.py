"""The drift test bed has the properties the trainer's diagnosis relies on."""

from __future__ import annotations

import re
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from streamrec.streams.drift import DOMINANT, DRIFT_AT, STEP_S, TOPICS, DriftStream, drift_stream

N_EVENTS = 12_000


@pytest.fixture(scope="module")
def stream() -> DriftStream:
    return drift_stream(n_events=N_EVENTS, n_users=80, n_items=400, seed=3)


def _era_share(stream: DriftStream, era: int, topic_era: int, lo: float, hi: float) -> float:
    """Share of events with ts in [lo, hi) whose item is in the user's era-``topic_era`` topic."""
    events = [e for e in stream.events if lo <= e.ts < hi]
    hits = [stream.topic_of[e.item_id] == stream.dominant[e.user_id][topic_era] for e in events]
    return float(np.mean(hits))


def test_the_dominant_topic_changes_at_the_stated_times(stream: DriftStream) -> None:
    t0 = stream.events[0].ts
    assert stream.drifts == [t0 + int(share * N_EVENTS) * STEP_S for share in DRIFT_AT]
    edges = [t0, *stream.drifts, stream.events[-1].ts + 1]
    settle = 300 * STEP_S  # series begun before a drift may still be finished after it
    for era in range(len(edges) - 1):
        lo, hi = edges[era] + (settle if era else 0), edges[era + 1]
        assert _era_share(stream, era, era, lo, hi) > DOMINANT - 0.15
        if era:
            assert _era_share(stream, era, era - 1, lo, hi) < 0.25  # the old topic is left behind
    assert all(len(set(eras)) > 1 for eras in stream.dominant.values())


def test_new_items_are_released_over_time_and_used_only_after(stream: DriftStream) -> None:
    t0 = stream.events[0].ts
    later = {i for i, at in stream.released.items() if at > t0}
    assert 0.2 * len(stream.items) < len(later) < 0.6 * len(stream.items)
    assert len(set(stream.released.values())) > 10  # released at many moments, not once
    assert all(stream.released[e.item_id] <= e.ts for e in stream.events)
    first_use = {}
    for e in stream.events:
        first_use.setdefault(e.item_id, e.ts)
    assert sum(first_use.get(i, 0) > stream.drifts[0] for i in later) > 10  # new items do get picked


def test_the_text_carries_the_topic_and_the_id_does_not(stream: DriftStream) -> None:
    for item in stream.items:
        words = set(re.findall(r"[a-z]+", item.text.lower()))
        topic = stream.topic_of[item.item_id]
        assert words & set(TOPICS[topic])
        assert not any(words & set(TOPICS[other]) for other in TOPICS if other != topic)
        assert re.fullmatch(r"d\d+", item.item_id)


def test_items_come_in_series_that_users_follow(stream: DriftStream) -> None:
    parts = Counter(re.search(r"part (\d)", item.title).group(1) for item in stream.items)
    assert len(set(parts.values())) == 1
    by_user: dict[str, list[int]] = {}
    for e in stream.events:
        by_user.setdefault(e.user_id, []).append(int(e.item_id[1:]))
    follows = sum(b == a + 1 for seq in by_user.values() for a, b in pairwise(seq))
    assert follows > 0.2 * len(stream.events)


def test_the_same_seed_gives_the_same_stream() -> None:
    a, b = drift_stream(2000, 30, 100, seed=5), drift_stream(2000, 30, 100, seed=5)
    assert a.events == b.events and a.items == b.items
    assert drift_stream(2000, 30, 100, seed=6).events != a.events
