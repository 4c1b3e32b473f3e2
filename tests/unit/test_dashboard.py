"""/dashboard and /v1/dashboard/stats without a broker: fake topics, a fake worker endpoint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from streamrec.serving import dashboard as dash
from streamrec.serving.app import create_app
from streamrec.serving.dashboard import Feed
from streamrec.serving.lists import LatestLists
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record
from streamrec.streams.catalog import Catalog
from streamrec.streams.contracts import dead_letter, encode_event, encode_item, recommendation_message
from streamrec.streams.metrics import WorkerMetrics
from streamrec.types import Event, Item
from tests.unit.test_http_api import FakeIntake, FakeReader

WORKER_URL = "http://127.0.0.1:1/metrics"
DOWN_URL = "http://127.0.0.1:2/metrics"
NOW = 1_000_000.0


@dataclass
class Fakes:
    feed: Feed | None = None
    catalog: Catalog | None = None
    worker: WorkerMetrics = field(default_factory=WorkerMetrics)
    stats: Counter[str] = field(default_factory=Counter)
    watched: int = 0

    def fetch(self, url: str) -> str:
        if url == DOWN_URL:
            raise httpx.ConnectError("connection refused")
        return generate_latest(self.worker.registry).decode()


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client(fakes: Fakes) -> Iterator[TestClient]:
    settings = Settings.load(env={}, overrides={"worker_metrics_urls": f"{WORKER_URL},{DOWN_URL}"})
    fakes.worker.watch([fakes.stats], lambda: 0, lambda: 0, lambda: {0: 3}, trusted=False)
    fakes.worker.model_swapped("transformer", "v0002", at=NOW - 30)

    def follow(_: Settings, lists: LatestLists, catalog: Catalog) -> list[FakeReader]:
        fakes.catalog = catalog
        return [FakeReader("recommendations"), FakeReader("items")]

    def watch(_: Settings, feed: Feed) -> list[FakeReader]:
        fakes.feed, fakes.watched = feed, fakes.watched + 1
        return []

    app = create_app(settings, make_intake=lambda _: FakeIntake(), follow=follow, watch=watch, fetch=fakes.fetch)
    with TestClient(app) as test_client:
        yield test_client


def records(values: list[bytes], at: float) -> list[Record]:
    key = b"u1"
    return [Record(key, v, int(at * 1000), 0, n) for n, v in enumerate(values)]


def test_the_page_is_one_self_contained_file(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/dashboard/stats" in page.text
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
    assert "<script src" not in page.text and "innerHTML" not in page.text  # untrusted text goes in as text


def test_stats_show_topics_workers_and_one_user(client: TestClient, fakes: Fakes, monkeypatch) -> None:
    monkeypatch.setattr(dash.time, "time", lambda: NOW)
    monkeypatch.setattr(dash, "SNAPSHOT_EVERY_S", 0.0)  # the clock stands still: snapshot on every request
    client.get("/v1/dashboard/stats")  # the first request starts the readers
    assert fakes.watched == 1 and fakes.feed is not None
    fakes.catalog.on_records([Record(None, encode_item(Item(i, i.upper())), 0, 0, n) for n, i in enumerate("abcd")])
    events = [encode_event(Event("u1", item, "view", NOW - 3, f"e{item}")) for item in "ab"]
    fakes.feed.on_events(records([*events, b"{broken"], at=NOW - 2))
    reason = "<b>not markup</b> malformed JSON: oops"
    fakes.feed.on_dead_letters(records([dead_letter(b"{broken", reason, "events[0]@2", now=NOW - 2)], at=NOW - 2))
    lists = [
        recommendation_message(
            "u1", [("c", 0.9), ("d", 0.5)], Event("u1", "a", "view", NOW - 3, "ea"), "m1", 1, NOW - 1
        ),
        recommendation_message(
            "u1",
            [("d", 0.8), ("b", 0.4)],
            Event("u1", "b", "view", NOW - 3, "eb"),
            "m1",
            2,
            NOW - 1,
            [{"reason": "because you viewed a"}, {}],
        ),
    ]
    fakes.feed.on_lists(records(lists, at=NOW - 1))
    fakes.stats.update(events_in=3, applied=2, lists_out=2)
    fakes.worker.published([NOW - 2.05, NOW - 2.02], now=NOW - 2.0)
    fakes.worker.dead_lettered(reason)

    stats = client.get("/v1/dashboard/stats", params={"user": "u1"}).json()

    assert fakes.watched == 1
    assert stats["events_total"] == 2 and stats["events_per_s"] == pytest.approx(2 / dash.RATE_WINDOW_S)
    assert stats["dead_letters_total"] == 1
    assert stats["latest_reasons"][0]["reason"] == reason  # as sent: the page shows it as text
    assert stats["top_items"][0] == {"item_id": "d", "lists": 2}
    assert stats["coverage"] == {"lists": 2, "distinct_items": 3, "catalog_items": 4, "share": 0.75}
    user = stats["user"]
    assert [e["item_id"] for e in user["events"]] == ["b", "a"]  # newest first
    assert [i["item_id"] for i in user["lists"][0]["items"]] == ["d", "b"]
    assert user["lists"][0]["items"][0]["reason"] == "because you viewed a" and user["lists"][0]["user_events"] == 2
    up, down = stats["workers"]["endpoints"]
    assert up["up"] and up["model"] == {"model": "transformer", "artifact": "v0002"}
    assert up["model_loaded_at"] == NOW - 30 and up["lag_trusted"] is False
    assert not down["up"] and "refused" in down["error"]
    totals = stats["workers"]["totals"]
    assert totals["streamrec_worker_events"] == 3 and totals["streamrec_worker_lists_published"] == 2
    assert stats["workers"]["dead_letters_by_reason"]["malformed"] == 1
    assert stats["workers"]["consumer_lag"] == {"0": 3}
    assert 0.02 <= stats["history"][-1]["p50"] <= 0.05


def test_history_gets_rates_from_worker_counters(fakes: Fakes) -> None:
    settings = Settings.load(env={}, overrides={"worker_metrics_urls": WORKER_URL})
    fakes.worker.watch([fakes.stats], lambda: 0, lambda: 0, dict, trusted=True)
    board = dash.Dashboard(settings, lambda: 0, watch=lambda *_: [], fetch=fakes.fetch)
    board.stats(now=NOW)
    fakes.stats["events_in"] += 50
    assert len(board.stats(now=NOW + 0.5)["history"]) == 1  # one snapshot per SNAPSHOT_EVERY_S at most
    history = board.stats(now=NOW + 2.0)["history"]
    assert len(history) == 2 and "processed_per_s" not in history[0]
    assert history[1]["processed_per_s"] == pytest.approx(25.0)


def test_stats_need_a_key_when_keys_are_set() -> None:
    settings = Settings.load(env={}, overrides={"http_api_keys": "k" * 32})
    app = create_app(settings, make_intake=lambda _: FakeIntake(), follow=lambda *_: [], watch=lambda *_: [])
    with TestClient(app) as test_client:
        assert test_client.get("/dashboard").status_code == 200  # the page itself is open
        assert test_client.get("/v1/dashboard/stats").status_code == 401
        answer = test_client.get("/v1/dashboard/stats", headers={"Authorization": "Bearer " + "k" * 32})
        assert answer.status_code == 200


def test_feed_counts_at_most_max_models_the_least_recently_listed_forgotten() -> None:
    feed = Feed()
    for n in (*range(3 * dash.MAX_MODELS), 0):
        message = {"user_id": "u", "items": [], "generated_at": NOW, "source_event_ts": NOW, "source_event_id": None}
        feed.on_lists([Record(b"u", orjson.dumps(message | {"model": f"m{n}", "user_events": 1}), 0, 0, n)])
    models = feed.snapshot(None, 0, NOW)["models_in_lists"]
    assert len(models) == dash.MAX_MODELS and models["m0"] == 1 and f"m{3 * dash.MAX_MODELS - 1}" in models


def test_feed_forgets_the_least_recently_active_users(monkeypatch) -> None:
    monkeypatch.setattr(dash, "MAX_USERS", 2)
    feed = Feed()
    for user in ("u1", "u2", "u1", "u3"):
        value = encode_event(Event(user, "a", "view", NOW, None))
        feed.on_events([Record(user.encode(), value, int(NOW * 1000), 0, 0)])
    assert list(feed.users) == ["u1", "u3"]
    assert orjson.loads(orjson.dumps(feed.snapshot("u2", 0, NOW)))["user"]["events"] == []
