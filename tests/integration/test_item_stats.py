"""Two workers split the partitions; item-side statistics stay exact on both.

Each worker learns item statistics from the shared learning log, so a brand-new user's
popularity list (scores = event-type-weighted counts) must equal the counts over *all*
events, whichever worker serves it, even with producer retries in the stream.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from infra.config import Settings
from infra.stack import Stack
from models.base import EVENT_WEIGHTS
from streams.broadcast import TopicReader
from streams.contracts import Event, Item
from streams.replay import Pacer, produce_items, replay
from streams.sources import synthetic_events
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

ITEMS, USERS, EVENTS, PROBES, K = 40, 150, 3000, 24, 10


def test_two_workers_learn_exact_global_statistics(settings: Settings) -> None:
    events = list(synthetic_events(EVENTS, USERS, ITEMS, seed=3))
    stream = events + events[500:700]  # producer retries: same ids, applied once
    truth = Counter()
    for e in events:
        truth[e.item_id] += EVENT_WEIGHTS[e.event_type]
    per_user = Counter(e.user_id for e in events)
    probes = [Event(f"probe-{n}", "rare", "view", 1.7e9 + EVENTS + n, f"probe-{n}") for n in range(PROBES)]
    latest: dict[str, dict] = {}
    with Stack(settings.with_(recommender="popularity", k=K), workers=2) as stack:
        produce_items([Item(f"s{i}", f"Item {i}") for i in range(ITEMS)] + [Item("rare", "Rare")], stack.settings)
        reader = TopicReader(stack.settings.bootstrap_servers, stack.settings.topic_recommendations,
                             lambda rs: latest.update((m["user_id"], m) for m in map(orjson.loads, (r.value for r in rs))),
                             "stats").start()
        replay(stream, stack.settings, Pacer(rate=1500), quiet=True)
        assert wait_for(lambda: all(latest.get(u, {}).get("user_events") == n for u, n in per_user.items()), 90)
        replay(probes, stack.settings, quiet=True)
        assert wait_for(lambda: all(p.user_id in latest for p in probes), 30)
        reader.stop()
    expected = sorted((truth[i] for i in truth), reverse=True)[:K]
    for probe in probes:
        served = latest[probe.user_id]["items"]
        assert sorted((entry["score"] for entry in served), reverse=True) == expected
        assert all(entry["score"] == truth[entry["item_id"]] for entry in served)
