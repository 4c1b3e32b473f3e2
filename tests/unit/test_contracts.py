import orjson
import pytest

from streamrec.types import Item

from streamrec.streams.contracts import InvalidEvent, dead_letter, encode_event, parse_event, parse_item, recommendation_message

NOW = 1_700_000_000.0


def event(**fields) -> bytes:
    base = {"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": NOW}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_valid_event_round_trips() -> None:
    parsed = parse_event(event(event_id="e1"), now=NOW)
    assert (parsed.user_id, parsed.item_id, parsed.event_type, parsed.ts, parsed.event_id) == ("u1", "i1", "view", NOW, "e1")
    assert parse_event(encode_event(parsed), now=NOW) == parsed


def test_missing_ts_means_now() -> None:
    assert parse_event(event(ts=...), now=NOW).ts == NOW


def test_numeric_ids_are_accepted_as_strings() -> None:
    assert parse_event(event(user_id=42), now=NOW).user_id == "42"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (event(event_type=...), "missing field(s): event_type"),
        (event(extra=1), "unknown field(s): extra"),
        (event(event_type="like"), "event_type: 'like' is not one of"),
        (event(user_id=""), "user_id: must not be empty"),
        (event(item_id="   "), "item_id: must not be empty"),
        (event(user_id=["x"]), "user_id: expected a string"),
        (event(item_id=True), "item_id: expected a string"),
        (event(ts="yesterday"), "ts: expected epoch seconds"),
        (event(ts=-5), "is not a valid epoch time"),
        (event(ts=NOW + 10 * 86400), "more than a day in the future"),
        (event(item_id="x" * 300), "longer than 256"),
        (event(item_id="x" * 5000), "over the 4096-byte limit"),
    ],
)
def test_bad_events_are_rejected_with_a_precise_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=None) as exc:
        parse_event(raw, now=NOW)
    assert reason in str(exc.value)


def test_items_default_to_available_and_validate_types() -> None:
    item = parse_item(b'{"item_id": 7, "title": "Heat", "category": "Crime"}')
    assert item == Item("7", "Heat", "", "Crime", True)
    assert item.text == "Heat. Crime"
    with pytest.raises(InvalidEvent, match="available"):
        parse_item(b'{"item_id": "7", "title": "Heat", "available": "yes"}')


def test_dead_letter_keeps_original_bytes() -> None:
    text = orjson.loads(dead_letter(b"{oops", "malformed JSON", "events[0]@3", now=1.0))
    assert text == {"reason": "malformed JSON", "original": "{oops", "encoding": "text", "source": "events[0]@3", "failed_at": 1.0}
    binary = orjson.loads(dead_letter(b"\xff\xfe", "bad"))
    assert binary["encoding"] == "base64" and binary["original"] == "//4="


def test_recommendation_message_contract() -> None:
    source = parse_event(event(event_id="e9"), now=NOW)
    message = orjson.loads(recommendation_message("u1", [("a", 0.5)], source, "cooccurrence", 3, now=2.0))
    assert message == {
        "user_id": "u1",
        "items": [{"item_id": "a", "score": 0.5}],
        "generated_at": 2.0,
        "source_event_ts": NOW,
        "source_event_id": "e9",
        "model": "cooccurrence",
        "user_events": 3,
    }
