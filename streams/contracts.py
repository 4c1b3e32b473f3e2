"""Message contracts of the public topics (the product's API), with strict validation.

``events`` (key = user_id)::

    {"user_id": str, "item_id": str, "event_type": "view"|"click"|"purchase",
     "ts": float epoch seconds (optional -> now), "event_id": str (optional)}

``items`` (key = item_id)::

    {"item_id": str, "title": str, "description": str?, "category": str?,
     "available": bool? (default true)}

``recommendations`` (key = user_id)::

    {"user_id", "items": [{"item_id", "score", "reason"?, "source"?}...], "generated_at",
     "source_event_ts", "source_event_id", "model", "user_events"}

``events.dlq``: ``{"reason", "original", "encoding": "text"|"base64", "source", "failed_at"}``.

Anything invalid is rejected with a precise reason (`InvalidEvent`) so the worker can
dead-letter it and go on.

>>> parse_event(b'{"user_id": "u1", "item_id": "i9", "event_type": "click", "ts": 5}')
Event(user_id='u1', item_id='i9', event_type='click', ts=5.0, event_id=None)
>>> parse_event(b'{"user_id": "u1", "item_id": "i9", "event_type": "like"}')
Traceback (most recent call last):
...
streamrec.streams.contracts.InvalidEvent: event_type: 'like' is not one of click, purchase, view
"""

from __future__ import annotations

import base64
import math
import time
import dataclasses
from typing import Any

import orjson

from streamrec.types import EVENT_TYPE_INDEX, EVENT_TYPES, Event, Item

REQUIRED = ("user_id", "item_id", "event_type")
OPTIONAL = ("ts", "event_id")
MAX_ID_CHARS = 256
# Events further than this in the future are clock bugs, not data.
MAX_FUTURE_S = 24 * 3600.0


class InvalidEvent(ValueError):
    """An event that violates the contract; ``str(exc)`` is the reason sent to the DLQ."""


def encode_event(event: Event) -> bytes:
    """The ``events`` record of ``event`` (``event_id`` only when it has one)."""
    out: dict[str, Any] = {"user_id": event.user_id, "item_id": event.item_id, "event_type": event.event_type, "ts": event.ts}
    if event.event_id is not None:
        out["event_id"] = event.event_id
    return orjson.dumps(out)


def parse_event(raw: bytes | str, max_bytes: int = 4096, now: float | None = None) -> Event:
    """Decode and validate one event; raise `InvalidEvent` with the reason."""
    if len(raw) > max_bytes:
        raise InvalidEvent(f"payload is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc}") from None
    return validate_event(data, now=now)


def validate_event(data: Any, now: float | None = None) -> Event:
    """Validate an already-decoded event object."""
    if not isinstance(data, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(data).__name__}")
    missing = [f for f in REQUIRED if f not in data]
    if missing:
        raise InvalidEvent(f"missing field(s): {', '.join(missing)}")
    extra = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if extra:
        raise InvalidEvent(f"unknown field(s): {', '.join(extra)}")
    user_id = _identifier(data, "user_id")
    item_id = _identifier(data, "item_id")
    event_type = data["event_type"]
    if event_type not in EVENT_TYPE_INDEX:
        raise InvalidEvent(f"event_type: {event_type!r} is not one of {', '.join(sorted(EVENT_TYPES))}")
    now = time.time() if now is None else now
    ts = _timestamp(data.get("ts"), now)
    event_id = None if data.get("event_id") is None else _identifier(data, "event_id")
    return Event(user_id, item_id, event_type, ts, event_id)


def _identifier(data: dict[str, Any], field: str) -> str:
    value = data[field]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent(f"{field}: expected a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InvalidEvent(f"{field}: must not be empty")
    if len(text) > MAX_ID_CHARS:
        raise InvalidEvent(f"{field}: longer than {MAX_ID_CHARS} characters")
    return text


def _timestamp(value: Any, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"ts: expected epoch seconds as a number, got {type(value).__name__}")
    ts = float(value)
    if not math.isfinite(ts) or ts < 0:
        raise InvalidEvent(f"ts: {value!r} is not a valid epoch time")
    if ts > now + MAX_FUTURE_S:
        raise InvalidEvent(f"ts: {value!r} is more than a day in the future")
    return ts


def encode_item(item: Item) -> bytes:
    """The ``items`` record of ``item``."""
    return orjson.dumps(dataclasses.asdict(item))


def parse_item(raw: bytes | str) -> Item:
    """Decode and validate one ``items`` record; raise `InvalidEvent` with the reason."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent(f"item must be a JSON object, got {type(data).__name__}")
    if "item_id" not in data or "title" not in data:
        raise InvalidEvent("item needs item_id and title")
    texts = {}
    for field in ("title", "description", "category"):
        value = data.get(field) or ""
        if not isinstance(value, str):
            raise InvalidEvent(f"{field}: expected a string, got {type(value).__name__}")
        texts[field] = value
    available = data.get("available", True)
    if not isinstance(available, bool):
        raise InvalidEvent(f"available: expected a boolean, got {type(available).__name__}")
    return Item(_identifier(data, "item_id"), available=available, **texts)


def recommendation_message(
    user_id: str,
    items: list[tuple[str, float]],
    source: Event,
    model: str,
    user_events: int,
    now: float | None = None,
    explanations: list[dict[str, str]] | None = None,
) -> bytes:
    """The ``recommendations`` record published after a user's state changed; each item
    carries its explanation (``reason``, ``source``) when the model gives one."""
    explanations = explanations or [{} for _ in items]
    return orjson.dumps(
        {
            "user_id": user_id,
            "items": [
                {"item_id": i, "score": round(float(s), 6), **why} for (i, s), why in zip(items, explanations, strict=True)
            ],
            "generated_at": time.time() if now is None else now,
            "source_event_ts": source.ts,
            "source_event_id": source.event_id,
            "model": model,
            "user_events": user_events,
        }
    )


def dead_letter(raw: bytes, reason: str, source: str = "", now: float | None = None) -> bytes:
    """The ``events.dlq`` record: original bytes (text if UTF-8, else base64), reason, time."""
    try:
        original, encoding = raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        original, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    record = {
        "reason": reason,
        "original": original,
        "encoding": encoding,
        "source": source,
        "failed_at": time.time() if now is None else now,
    }
    return orjson.dumps(record)
