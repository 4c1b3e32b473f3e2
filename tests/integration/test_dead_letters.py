"""Every kind of bad input lands on events.dlq with its reason; valid events keep flowing."""

from __future__ import annotations

import uuid

import orjson
import pytest

from streamrec.infra.stack import Stack
from streamrec.streams.broadcast import TopicReader
from streamrec.streams.contracts import encode_event
from streamrec.streams.replay import produce_items, produce_raw
from streamrec.types import Event, Item
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_bad_input_is_dead_lettered_and_valid_input_is_not_lost(stack: Stack) -> None:
    settings = stack.settings
    tag = uuid.uuid4().hex[:6]
    produce_items([Item(f"d{tag}-{i}", f"Film {i}") for i in range(5)], settings)
    user = f"dlq-{tag}"
    valid = lambda i: encode_event(Event(user, f"d{tag}-{i % 5}", "view", 100.0 + i, f"{tag}-{i}"))  # noqa: E731
    bad = {
        "malformed JSON": b'{"user_id": ',
        "missing field(s): item_id": orjson.dumps({"user_id": user, "event_type": "view"}),
        "unknown field(s): colour": orjson.dumps(
            {"user_id": user, "item_id": f"d{tag}-1", "event_type": "view", "colour": 1}
        ),
        "user_id: expected a string": orjson.dumps({"user_id": 3.5, "item_id": "x", "event_type": "view"}),
        "event_type: 'like'": orjson.dumps({"user_id": user, "item_id": f"d{tag}-1", "event_type": "like"}),
        "item_id: must not be empty": orjson.dumps({"user_id": user, "item_id": "", "event_type": "view"}),
        "over the 4096-byte limit": orjson.dumps({"user_id": user, "item_id": "z" * 5000, "event_type": "view"}),
        "unknown item_id": orjson.dumps({"user_id": user, "item_id": "never-announced", "event_type": "view"}),
        "must equal user_id": orjson.dumps({"user_id": "someone-else", "item_id": f"d{tag}-1", "event_type": "view"}),
    }
    dead: list[dict] = []
    reader = TopicReader(
        settings.bootstrap_servers,
        settings.topic_dlq,
        lambda rs: dead.extend(orjson.loads(r.value) for r in rs if r.key == user.encode()),
        "test",
    ).start()
    lists: list[dict] = []
    out = TopicReader(
        settings.bootstrap_servers,
        settings.topic_recommendations,
        lambda rs: lists.extend(m for m in map(orjson.loads, (r.value for r in rs)) if m["user_id"] == user),
        "test2",
    ).start()
    interleaved = [record for i, raw in enumerate(bad.values()) for record in ((user, raw), (user, valid(i)))]
    produce_raw(settings, settings.topic_events, interleaved)
    assert wait_for(lambda: len(dead) >= len(bad) and any(m["user_events"] == len(bad) for m in lists), 60)
    reader.stop()
    out.stop()
    reasons = [d["reason"] for d in dead]
    for expected in bad:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    original = {d["original"] for d in dead}
    assert bad["malformed JSON"].decode() in original  # the bytes are kept verbatim
    assert max(m["user_events"] for m in lists) == len(bad)  # every valid event applied, once
