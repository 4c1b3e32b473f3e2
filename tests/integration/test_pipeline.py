"""Events in -> lists on the topic and over HTTP, through the real broker, worker and server."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, Producer

from streamrec.infra.stack import Stack
from streamrec.streams.replay import produce_items
from streamrec.types import Item
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

ITEMS = [Item(f"m{i}", f"Movie {i}", category="Drama" if i % 2 else "Comedy, Drama") for i in range(20)]


@pytest.fixture(scope="module")
def catalog(stack: Stack) -> list[Item]:
    produce_items(ITEMS, stack.settings)
    return ITEMS


def plain_consumer(stack: Stack, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.bootstrap_servers,
            "group.id": f"plain-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.subscribe([topic])
    return consumer


def collect(consumer: Consumer, until, timeout_s: float = 60.0) -> list[dict]:
    """Poll a plain consumer until ``until(messages)`` holds."""
    messages: list[dict] = []
    wait_for(lambda: bool(messages.extend(_poll(consumer))) or until(messages), timeout_s, every_s=0)
    return messages


def _poll(consumer: Consumer) -> list[dict]:
    return [orjson.loads(m.value()) for m in consumer.consume(100, 0.2) if m.error() is None]


def test_plain_kafka_clients_see_lists_for_produced_events(stack: Stack, catalog: list[Item]) -> None:
    user = f"plain-{uuid.uuid4().hex[:6]}"
    consumer = plain_consumer(stack, stack.settings.topic_recommendations)
    # A plain client needs only the Java client's partitioner (librdkafka's default, CRC32,
    # puts some users on another partition than their state: those events are dead-lettered).
    producer = Producer({"bootstrap.servers": stack.settings.bootstrap_servers, "partitioner": "murmur2_random"})
    for i, item in enumerate(catalog[:5]):
        event = {
            "user_id": user,
            "item_id": item.item_id,
            "event_type": "click",
            "ts": 1000.0 + i,
            "event_id": f"{user}-{i}",
        }
        producer.produce(stack.settings.topic_events, key=user.encode(), value=orjson.dumps(event))
    producer.flush()
    messages = collect(consumer, lambda ms: any(m["user_id"] == user and m["user_events"] == 5 for m in ms))
    consumer.close()
    final = [m for m in messages if m["user_id"] == user][-1]
    assert final["user_events"] == 5 and final["source_event_id"] == f"{user}-4"
    recommended = [entry["item_id"] for entry in final["items"]]
    assert len(recommended) == stack.settings.k
    assert not set(recommended) & {item.item_id for item in catalog[:5]}  # what the user just met is excluded


def test_http_serves_lists_and_takes_events(stack: Stack, catalog: list[Item]) -> None:
    http = httpx.Client(base_url=stack.http_url, timeout=5)
    user = f"http-{uuid.uuid4().hex[:6]}"
    assert http.get(f"/v1/users/{user}/recommendations").status_code == 404
    response = http.post("/v1/events", json={"user_id": user, "item_id": "m3", "event_type": "purchase"})
    assert response.status_code == 202 and response.json()["event_id"]
    assert wait_for(lambda: http.get(f"/v1/users/{user}/recommendations").status_code == 200)
    body = http.get(f"/v1/users/{user}/recommendations", params={"k": 3}).json()
    assert len(body["items"]) == 3 and body["user_events"] == 1
    assert "m3" not in {i["item_id"] for i in body["items"]} and body["items"][0]["title"].startswith("Movie")
    comedies = http.get(f"/v1/users/{user}/recommendations", params={"category": "comedy"}).json()["items"]
    assert comedies and all(int(i["item_id"][1:]) % 2 == 0 for i in comedies)
    bad = http.post("/v1/events", json={"user_id": user, "item_id": "m3", "event_type": "like"})
    assert bad.status_code == 422 and "event_type" in bad.json()["error"]["message"]
    assert http.get("/v1/users/x/recommendations", params={"k": 0}).status_code == 422
    assert http.get("/healthz").json()["status"] == "ok"
    metrics = http.get("/metrics").text
    assert 'streamrec_events_received_total{outcome="accepted"}' in metrics
    assert "streamrec_users_with_lists" in metrics
