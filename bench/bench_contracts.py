"""Cost of the wire codec per message, 1 thread: the pydantic models vs hand-written checks.

    python bench/bench_contracts.py

The worker parses every event, so `parse_event` is on the hot path. Three ways to turn
the same bytes into an `Event` are timed: today's codec (orjson decode + `EventMessage`
validation), pydantic's own JSON parser (`model_validate_json`), and the hand-written
checks the codec had before the models (kept below as the reference). The encoders
(orjson, producing the models' exact bytes) are timed against dumping through the models.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import orjson

from streamrec.streams.contracts import (
    EventMessage,
    RecommendationMessage,
    encode_event,
    parse_event,
    recommendation_message,
)
from streamrec.types import EVENT_TYPE_INDEX, Event

NOW = 1_700_000_000.0
EVENTS = [
    orjson.dumps(
        {"user_id": f"u{i}", "item_id": f"i{i % 997}", "event_type": "click", "ts": NOW - i, "event_id": f"e{i}"}
    )
    for i in range(1000)
]
# Each measurement runs at least this long, so timer noise and warm-up are negligible.
MIN_SECONDS = 1.0


def hand_written(raw: bytes) -> Event:
    """The pre-model validation (valid input only: the checks and conversions it ran)."""
    data = orjson.loads(raw)
    if not isinstance(data, dict) or any(f not in data for f in ("user_id", "item_id", "event_type")):
        raise ValueError
    if set(data) - {"user_id", "item_id", "event_type", "ts", "event_id"}:
        raise ValueError
    ids = [_identifier(data[f]) for f in ("user_id", "item_id")]
    if data["event_type"] not in EVENT_TYPE_INDEX:
        raise ValueError
    ts = float(data["ts"])
    if isinstance(data["ts"], bool) or not math.isfinite(ts) or ts < 0 or ts > NOW + 86400:
        raise ValueError
    return Event(ids[0], ids[1], data["event_type"], ts, _identifier(data["event_id"]))


def _identifier(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError
    text = str(value).strip()
    if not text or len(text) > 256:
        raise ValueError
    return text


def per_call_us(fn: Callable[[bytes], object], inputs: list) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < MIN_SECONDS:
        for x in inputs:
            fn(x)
        n += len(inputs)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parsed = [parse_event(raw, now=NOW) for raw in EVENTS]
    assert parsed == [hand_written(raw) for raw in EVENTS]
    ranked = [(f"i{j}", 1.0 / (j + 1)) for j in range(10)]
    why = [{"reason": f"because you clicked item {j}", "source": "fusion"} for j in range(10)]
    lists = [recommendation_message(e.user_id, ranked, e, "fusion", 3, NOW, why) for e in parsed[:100]]
    rows = {
        "parse_event (orjson + EventMessage)": per_call_us(lambda r: parse_event(r, now=NOW), EVENTS),
        "EventMessage.model_validate_json": per_call_us(
            lambda r: EventMessage.model_validate_json(r, context={"now": NOW}).to_event(NOW), EVENTS
        ),
        "hand-written checks (before the models)": per_call_us(hand_written, EVENTS),
        "encode_event (orjson)": per_call_us(encode_event, parsed),
        "EventMessage.of(e).model_dump_json()": per_call_us(lambda e: EventMessage.of(e).model_dump_json(), parsed),
        "recommendation_message, 10 items (orjson)": per_call_us(
            lambda e: recommendation_message(e.user_id, ranked, e, "fusion", 3, NOW, why), parsed[:100]
        ),
        "RecommendationMessage validate + dump": per_call_us(
            lambda raw: RecommendationMessage.model_validate_json(raw).model_dump_json(), lists
        ),
    }
    for name, us in rows.items():
        print(f"{name:45s} {us:7.2f} µs/message")
    ratio = rows["parse_event (orjson + EventMessage)"] / rows["hand-written checks (before the models)"]
    print(f"parse_event / hand-written: {ratio:.2f}x")


if __name__ == "__main__":
    main()
