"""A worker's Prometheus endpoint and the server's dashboard figures after a replay."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamrec.infra.stack import Stack
from tests.conftest import wait_for
from tests.traffic import USERS, feed, wait_for_lists

pytestmark = pytest.mark.integration

# The replay takes ~1 s at its pace; the lists follow within a batch or two.
LIST_WAIT_S = 90.0


def scrape(url: str) -> dict[str, float]:
    """Sample name with labels -> value."""
    families = text_string_to_metric_families(httpx.get(url, timeout=5).text)
    return {
        s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items())): s.value for f in families for s in f.samples
    }


@pytest.fixture(scope="module")
def fed(stack: Stack) -> dict[str, int]:
    expected = feed(stack)
    assert wait_for_lists(stack, expected, LIST_WAIT_S), "not every user got a list with all their events"
    return expected


def test_worker_metrics_count_the_replay(stack: Stack, fed: dict[str, int]) -> None:
    [url] = stack.metrics_urls.values()
    events = sum(fed.values())
    assert wait_for(lambda: scrape(url).get("streamrec_worker_dead_lettered_total|reason=malformed", 0) >= 1, 30)
    got = scrape(url)
    assert got["streamrec_worker_events_total"] >= events + 1
    assert got["streamrec_worker_events_applied_total"] >= events
    assert got["streamrec_worker_lists_published_total"] >= len(fed)
    assert got["streamrec_worker_batch_size_events_count"] > 0
    assert got["streamrec_worker_batch_size_events_sum"] >= events + 1
    assert got["streamrec_worker_batch_duration_seconds_count"] == got["streamrec_worker_batch_size_events_count"]
    assert got["streamrec_event_to_list_seconds_count"] >= events
    assert any(name.startswith("streamrec_worker_model_info|") for name in got)
    assert got["streamrec_worker_model_loaded_timestamp_seconds"] > 0
    assert got["streamrec_worker_end_offsets_trusted"] == 0  # the embedded broker: lag is not to be trusted
    lags = {name: v for name, v in got.items() if name.startswith("streamrec_worker_consumer_lag_records|")}
    assert len(lags) == stack.settings.partitions  # one worker owns every partition
    assert got["streamrec_worker_parked_events"] == 0 and got["streamrec_worker_learning_lag_records"] >= 0


def test_dashboard_stats_show_the_replay_and_a_user(stack: Stack, fed: dict[str, int]) -> None:
    http = httpx.Client(base_url=stack.http_url, timeout=5)
    user = USERS[0]

    def stats() -> dict:
        return http.get("/v1/dashboard/stats", params={"user": user}).json()

    assert wait_for(lambda: stats()["events_total"] >= sum(fed.values()) and stats()["user"]["lists"], 30)
    got = stats()
    assert got["dead_letters_total"] >= 1 and "malformed" in got["latest_reasons"][0]["reason"]
    assert got["top_items"] and got["coverage"]["catalog_items"] == 30 and got["coverage"]["share"] > 0
    [worker] = got["workers"]["endpoints"]
    assert worker["up"] and worker["url"] == stack.metrics_urls["worker-0"] and worker["model"]
    assert got["workers"]["totals"]["streamrec_worker_events_applied"] >= sum(fed.values())
    assert got["user"]["lists"][0]["user_events"] == fed[user]
    assert len(got["user"]["events"]) == fed[user]
    metrics = http.get("/metrics").text
    assert "streamrec_lists_consumed_total" in metrics and "streamrec_http_request_duration_seconds_bucket" in metrics
