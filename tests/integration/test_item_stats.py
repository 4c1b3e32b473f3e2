"""Two workers split the partitions; item-side statistics stay exact on both.

Each worker learns item statistics from the shared learning log, so a brand-new user's
popularity list (scores = event-type-weighted counts) must equal the counts over *all*
events, whichever worker serves it, even with producer retries in the stream.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.broadcast import TopicReader
from streamrec.streams.replay import Pacer, produce_items, replay
from streamrec.streams.sources import synthetic_events
from streamrec.types import EVENT_WEIGHTS, Event, Item
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

ITEMS, USERS, EVENTS, PROBES, K = 40, 150, 3000, 24, 10
# Probe rounds add at most PROBES * PROBE_ROUNDS views of "rare": far below the top-K counts.
PROBE_ROUNDS = 5


def test_two_workers_learn_exact_global_statistics(settings: Settings) -> None:
    events = list(synthetic_events(EVENTS, USERS, ITEMS, seed=3))
    stream = events + events[500:700]  # producer retries: same ids, applied once
    truth = Counter()
    for e in events:
        truth[e.item_id] += EVENT_WEIGHTS[e.event_type]
    per_user = Counter(e.user_id for e in events)
    expected = sorted(truth.values(), reverse=True)[:K]
    latest: dict[str, dict] = {}
    with Stack(settings.with_(recommender="popularity", k=K), workers=2) as stack:
        produce_items([Item(f"s{i}", f"Item {i}") for i in range(ITEMS)] + [Item("rare", "Rare")], stack.settings)
        reader = TopicReader(
            stack.settings.bootstrap_servers,
            stack.settings.topic_recommendations,
            lambda rs: latest.update((m["user_id"], m) for m in map(orjson.loads, (r.value for r in rs))),
            "stats",
        ).start()
        replay(stream, stack.settings, Pacer(rate=1500), quiet=True)
        assert wait_for(lambda: all(latest.get(u, {}).get("user_events") == n for u, n in per_user.items()), 90)
        # Learning records cross between workers through Kafka, so a worker's statistics
        # converge to the truth: probe in rounds until they match. They must never exceed it
        # (a double count would never come back down).
        served = []
        for round_ in range(1, PROBE_ROUNDS + 1):
            served = probe(stack, latest, round_)
            for items in served:
                assert all(entry["score"] <= truth[entry["item_id"]] for entry in items)
            if all(top_scores(items) == expected for items in served):
                break
        reader.stop()
    assert all(top_scores(items) == expected for items in served)
    assert all(entry["score"] == truth[entry["item_id"]] for items in served for entry in items)


def probe(stack: Stack, latest: dict[str, dict], round_: int) -> list[list[dict]]:
    """Each probe user views the rare item once more; returns the lists they get."""
    users = [f"probe-{n}" for n in range(PROBES)]
    events = [Event(u, "rare", "view", 1.7e9 + EVENTS + round_, f"{u}-{round_}") for u in users]
    replay(events, stack.settings, quiet=True)
    assert wait_for(lambda: all(latest.get(u, {}).get("user_events") == round_ for u in users), 30)
    return [latest[u]["items"] for u in users]


def top_scores(items: list[dict]) -> list[float]:
    return sorted((entry["score"] for entry in items), reverse=True)
