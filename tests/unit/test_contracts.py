import hashlib
import json
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.streams.contracts import (
    MAX_DEAD_LETTER_BYTES,
    DeadLetterMessage,
    EventMessage,
    InvalidEvent,
    RecommendationMessage,
    dead_letter,
    encode_event,
    json_schema,
    parse_event,
    parse_item,
    parse_recommendation,
    recommendation_message,
    validate_event,
)
from streamrec.types import EVENT_TYPES, Event, Item

NOW = 1_700_000_000.0


def event(**fields) -> bytes:
    base = {"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": NOW}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_valid_event_round_trips() -> None:
    parsed = parse_event(event(event_id="e1"), now=NOW)
    assert (parsed.user_id, parsed.item_id, parsed.event_type, parsed.ts, parsed.event_id) == (
        "u1",
        "i1",
        "view",
        NOW,
        "e1",
    )
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
        (event(item_id="x" * 5000), "payload is 5067 bytes, over the 4096-byte limit"),
        # hostile input: each must be an InvalidEvent with a reason, never another error
        (event(event_type=["view"]), "event_type: ['view'] is not one of click, purchase, view"),
        (event(event_type={"a": 1}), "event_type: {'a': 1} is not one of"),
        (event(event_type=None), "event_type: None is not one of"),
        (b'{"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": NaN}', "malformed JSON"),
        (b'{"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": 1e400}', "malformed JSON"),
        (b'{"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": ' + b"9" * 400 + b"}", "malformed JSON"),
        (
            b'{"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": 1180591620717411303424}',
            "ts: 1.1805916207174113e+21 is more than a day in the future",
        ),
        (event(user_id={"nested": {"deeper": [1, 2, {"x": None}]}}), "user_id: expected a string, got dict"),
        (event(user_id=None), "user_id: expected a string, got NoneType"),
        (b'{"user_id": 184467440737095516160, "item_id": "i1", "event_type": "view"}', "user_id: expected a string"),
        (b'{"user_id": "\xff\xfe", "item_id": "i1", "event_type": "view"}', "malformed JSON"),
        (b"\xef\xbb\xbf" + event(), "malformed JSON"),
        (b"[" * 100_000, "over the 4096-byte limit"),
        (b"[" * 4000, "malformed JSON"),
        (b"", "malformed JSON"),
        (None, "empty record"),
        (b"null", "event must be a JSON object, got NoneType"),
        (b'"view"', "event must be a JSON object, got str"),
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
    assert text == {
        "reason": "malformed JSON",
        "original": "{oops",
        "encoding": "text",
        "source": "events[0]@3",
        "failed_at": 1.0,
        "original_bytes": 5,
        "original_sha256": hashlib.sha256(b"{oops").hexdigest(),
        "truncated": False,
    }
    binary = orjson.loads(dead_letter(b"\xff\xfe", "bad"))
    assert binary["encoding"] == "base64" and binary["original"] == "//4=" and not binary["truncated"]
    assert orjson.loads(dead_letter(None, "tombstone"))["original_bytes"] == 0


@pytest.mark.parametrize(
    "original",
    [b"x" * 5_000_000, b"\x00" * 300_000, "é€😀".encode() * 100_000, b"\xff" * 200_000, b'"\\' * 100_000],
    ids=["ascii", "escaped", "multibyte", "binary", "quotes"],
)
def test_dead_letter_of_a_huge_original_is_truncated_to_fit(original: bytes) -> None:
    raw = dead_letter(original, "r" * 10_000, "s" * 10_000)
    letter = DeadLetterMessage.model_validate_json(raw)
    assert len(raw) <= MAX_DEAD_LETTER_BYTES
    assert letter.truncated and letter.original_bytes == len(original)
    assert letter.original_sha256 == hashlib.sha256(original).hexdigest()
    kept = letter.original.encode() if letter.encoding == "text" else __import__("base64").b64decode(letter.original)
    assert original.startswith(kept) and len(kept) > MAX_DEAD_LETTER_BYTES // 8


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


# -- the models are the contract; the hot-path encoders produce their exact bytes

ids = st.one_of(
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s),
    st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
)
events = st.builds(
    Event,
    ids,
    ids,
    st.sampled_from(EVENT_TYPES),
    st.floats(min_value=0, max_value=NOW, allow_nan=False),
    st.one_of(st.none(), ids),
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_encode_event_is_the_models_dump_and_round_trips(e: Event) -> None:
    assert encode_event(e) == EventMessage.of(e).model_dump_json().encode()
    assert parse_event(encode_event(e), max_bytes=10_000, now=NOW) == e


reasons = st.one_of(st.none(), st.text(max_size=80), st.sampled_from(["because you liked <b>Heat</b>", "a\u202eb\nc"]))


@settings(max_examples=200, deadline=None)
@given(events, st.lists(st.tuples(ids, st.floats(-1e6, 1e6), reasons, st.one_of(st.none(), ids)), max_size=12))
def test_recommendation_message_is_the_models_dump(source: Event, entries: list) -> None:
    ranked = [(item_id, score) for item_id, score, _, _ in entries]
    why = [{k: v for k, v in (("reason", r), ("source", s)) if v is not None} for _, _, r, s in entries]
    raw = recommendation_message("u1", ranked, source, "fusion", 7, now=NOW, explanations=why)
    assert RecommendationMessage.model_validate_json(raw).model_dump_json().encode() == raw


# -- hostile bytes and JSON: only InvalidEvent, ever

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "user_id": json_values | ids,
        "item_id": json_values | ids,
        "event_type": json_values | st.sampled_from(EVENT_TYPES),
        "ts": json_values | st.integers(-(10**400), 10**400),
        "event_id": json_values,
        "extra": json_values,
    },
)


def only_invalid_event(parse, value) -> None:
    try:
        assert isinstance(parse(value), Event)
    except InvalidEvent as exc:
        assert str(exc)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_parse_event_of_arbitrary_bytes_raises_only_invalid_event(raw: bytes) -> None:
    only_invalid_event(lambda r: parse_event(r, now=NOW), raw)


@settings(max_examples=400, deadline=None)
@given(event_like | json_values)
def test_validate_event_of_arbitrary_json_raises_only_invalid_event(data) -> None:
    only_invalid_event(lambda d: validate_event(d, now=NOW), data)
    # the same value as JSON text (Python's encoder writes NaN and huge integers too)
    only_invalid_event(lambda r: parse_event(r, max_bytes=1 << 20, now=NOW), json.dumps(data).encode())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "ts: NaN is not a valid epoch time"),
        (math.inf, "ts: Infinity is not a valid epoch time"),
        (-math.inf, "ts: -Infinity is not a valid epoch time"),
        (10**400, "ts: an integer of 401 digits is not a valid epoch time"),
        pytest.param(10**40000, "ts: an integer of about 40001 digits is not a valid epoch time", id="40001-digits"),
        (True, "ts: expected epoch seconds as a number, got bool"),
    ],
)
def test_decoded_non_finite_and_huge_timestamps_have_precise_reasons(value, reason: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        validate_event({"user_id": "u", "item_id": "i", "event_type": "view", "ts": value}, now=NOW)
    assert str(exc.value) == reason


def test_duplicate_keys_last_one_wins() -> None:
    raw = b'{"user_id": "a", "item_id": "i", "event_type": "view", "user_id": "b", "ts": 5}'
    assert parse_event(raw, now=NOW).user_id == "b"


# -- readers of the recommendations topic


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"user_id": "u1"}, "missing field(s): items"),
        ({"user_id": "u1", "items": None}, "items"),
        ({"user_id": "u1", "items": "a,b"}, "items"),
        ({"user_id": "u1", "items": [{"score": 1.0}]}, "missing field(s): items.0.item_id"),
        ({"user_id": ["u1"], "items": []}, "user_id: expected a string, got list"),
        ({"user_id": "u1", "items": [{"item_id": "a", "score": "high"}]}, "score: expected a number, got str"),
    ],
)
def test_malformed_lists_are_rejected(message: dict, reason: str) -> None:
    full = {"generated_at": 1.0, "source_event_ts": 1.0, "source_event_id": None, "model": "m", "user_events": 1}
    with pytest.raises(InvalidEvent) as exc:
        parse_recommendation(orjson.dumps({**full, **message}))
    assert reason in str(exc.value)


def test_reasons_are_plain_text_on_both_sides() -> None:
    source = parse_event(event(), now=NOW)
    why = [{"reason": "because you liked <script>alert(1)</script>Heat\u202e\x00", "source": "fusion"}]
    raw = recommendation_message("u1", [("a", 0.5)], source, "fusion", 1, now=NOW, explanations=why)
    assert orjson.loads(raw)["items"][0]["reason"] == "because you liked alert(1)Heat"
    hostile = orjson.loads(raw)
    hostile["items"][0]["reason"] = "<img src=x onerror=alert(1)>\u2028" + "x" * 500
    assert parse_recommendation(orjson.dumps(hostile)).items[0].reason == "x" * 200


@pytest.mark.parametrize("contract", ["events", "items", "recommendations", "dlq"])
def test_json_schema_is_generated_from_the_models(contract: str) -> None:
    schema = json_schema(contract)
    assert schema["type"] == "object" and schema["properties"]
    assert json.loads(json.dumps(schema)) == schema


def test_schema_command_prints_the_generated_schema() -> None:
    from click.testing import CliRunner

    from streamrec.infra.cli import main

    result = CliRunner().invoke(main, ["schema", "recommendations"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json_schema("recommendations")
