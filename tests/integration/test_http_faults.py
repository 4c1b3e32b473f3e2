"""202 means stored: the HTTP intake against the real embedded broker, paused and killed.

- broker paused (SIGSTOP): a POST answers 503 within the ack timeout, never 202;
- broker resumed: POSTs answer 202 again, and the record is on the ``events`` topic;
- server killed (kill -9) right after a run of 202s: every acknowledged event is there;
- a 100 MB body is refused (413) without the server's memory growing by it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.broadcast import read_all
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

ACK_TIMEOUT_S = 2.0
# Generous bound on one request: the ack timeout plus the server's own work.
REQUEST_TIMEOUT_S = ACK_TIMEOUT_S + 20.0
TOPIC_READ_TIMEOUT_S = 30.0
BIG_BODY_BYTES = 100 * 1024 * 1024
# The server may allocate a little while refusing; the body itself must not be kept.
MAX_RSS_GROWTH_BYTES = 20 * 1024 * 1024


@pytest.fixture
def stack(settings: Settings) -> Iterator[Stack]:
    """Broker and HTTP server only: the intake needs no worker."""
    with Stack(settings.with_(http_ack_timeout_s=ACK_TIMEOUT_S), workers=0, serve=True) as running:
        yield running


def event(n: int, **extra: object) -> dict:
    return {"user_id": f"u{n % 7}", "item_id": f"i{n}", "event_type": "view", "ts": 1000.0 + n, **extra}


def stored_event_ids(stack: Stack) -> set[str]:
    records = read_all(
        stack.settings.bootstrap_servers, stack.settings.topic_events, TOPIC_READ_TIMEOUT_S, "http-faults"
    )
    return {orjson.loads(r.value)["event_id"] for r in records}


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


def test_202_only_after_the_broker_acknowledged(stack: Stack) -> None:
    http = httpx.Client(base_url=stack.http_url, timeout=REQUEST_TIMEOUT_S)
    assert http.post("/v1/events", json=event(0, event_id="before")).status_code == 202
    broker = stack.broker._process  # the Tansu process
    broker.send_signal(signal.SIGSTOP)
    try:
        paused = http.post("/v1/events", json=event(1, event_id="paused"))
        batch = http.post("/v1/events/batch", json={"events": [event(2), event(3)]})
    finally:
        broker.send_signal(signal.SIGCONT)
    assert paused.status_code == 503, paused.text
    assert paused.json()["error"]["code"] == "not_acknowledged"
    assert paused.json()["error"]["details"] == {"event_id": "paused"}
    assert batch.status_code == 503 and len(batch.json()["error"]["details"]["events"]) == 2

    # Resumed: the producer reconnects on its own and 202s come back.
    assert wait_for(lambda: http.post("/v1/events", json=event(4, event_id="after")).status_code == 202)
    assert {"before", "after"} <= stored_event_ids(stack)


def test_kill_9_after_202s_loses_none_of_them(stack: Stack) -> None:
    http = httpx.Client(base_url=stack.http_url, timeout=REQUEST_TIMEOUT_S)
    acknowledged = []
    for n in range(20):
        response = http.post("/v1/events", json=event(n))
        assert response.status_code == 202
        acknowledged.append(response.json()["event_id"])
    response = http.post("/v1/events/batch", json={"events": [event(n) for n in range(20, 220)]})
    assert response.status_code == 202 and response.json()["accepted"] == 200
    acknowledged += response.json()["event_ids"]
    stack.kill("server", signal.SIGKILL)  # no flush, no shutdown: only what the broker acked counts
    assert set(acknowledged) <= stored_event_ids(stack)


def test_a_100_mb_body_is_refused_without_being_kept(stack: Stack) -> None:
    pid = stack.processes["server"].pid
    http = httpx.Client(base_url=stack.http_url, timeout=REQUEST_TIMEOUT_S)
    before = rss_bytes(pid)

    def chunks() -> Iterator[bytes]:  # streamed, no Content-Length: the server must count
        for _ in range(BIG_BODY_BYTES // 65536):
            yield b" " * 65536

    try:
        response = http.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
    except httpx.HTTPError:  # the server may close the connection once it has answered
        pass
    declared = http.post(
        "/v1/events/batch", content=b" " * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_entity_too_large"
    assert rss_bytes(pid) - before < MAX_RSS_GROWTH_BYTES
    assert http.get("/healthz").status_code == 200
    assert os.path.exists(f"/proc/{pid}")
