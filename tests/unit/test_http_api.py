"""The HTTP face without a broker: a fake intake and fake readers behind the real app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.serving.app import create_app
from streamrec.serving.lists import LatestLists
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record
from streamrec.streams.catalog import Catalog
from streamrec.streams.contracts import encode_item
from streamrec.types import Event, Item

EVENT = {"user_id": "u1", "item_id": "i1", "event_type": "view"}
JSON = {"content-type": "application/json"}


@dataclass
class FakeIntake:
    outcome: str | None = None
    sent: list[Event] = field(default_factory=list)
    closed: bool = False

    async def publish(self, events: list[Event]) -> list[str | None]:
        self.sent.extend(events)
        return [self.outcome] * len(events)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeReader:
    topic: str
    alive: bool = True
    caught_up: bool = True

    def stop(self) -> None:
        self.alive = False


@dataclass
class Server:
    client: TestClient
    intake: FakeIntake
    readers: list[FakeReader]
    lists: LatestLists | None = None
    catalog: Catalog | None = None

    def publish_lists(self, *messages: dict | bytes) -> None:
        values = [m if isinstance(m, bytes) else orjson.dumps(m) for m in messages]
        self.lists.on_records([Record(None, v, 0, 0, n) for n, v in enumerate(values)])


def serve(settings: Settings) -> Iterator[Server]:
    intake = FakeIntake()
    readers = [FakeReader("recommendations"), FakeReader("items")]
    server = Server(None, intake, readers)  # type: ignore[arg-type]

    def follow(_: Settings, lists: LatestLists, catalog: Catalog) -> list[FakeReader]:
        server.lists, server.catalog = lists, catalog
        return readers

    with TestClient(create_app(settings, make_intake=lambda _: intake, follow=follow)) as client:
        server.client = client
        yield server
    assert intake.closed


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve(Settings())


def a_list(user_id: object = "u1", items: object = None, **extra: object) -> dict:
    items = [{"item_id": "a", "score": 0.9, "reason": "because you liked <b>Heat</b>"}] if items is None else items
    return {
        "user_id": user_id,
        "items": items,
        "generated_at": 2.0,
        "source_event_ts": 1.0,
        "source_event_id": "e1",
        "model": "fusion",
        "user_events": 3,
        **extra,
    }


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# -- events


def test_an_event_is_accepted_once_acknowledged_with_an_id(server: Server) -> None:
    response = server.client.post("/v1/events", json={**EVENT, "ts": 5})
    assert response.status_code == 202
    [sent] = server.intake.sent
    assert response.json() == {"accepted": True, "event_id": sent.event_id}
    assert (sent.user_id, sent.item_id, sent.event_type, sent.ts) == ("u1", "i1", "view", 5.0) and sent.event_id
    assert server.client.post("/v1/events", json={**EVENT, "event_id": "mine"}).json()["event_id"] == "mine"


def test_an_unacknowledged_event_is_503_with_its_id_for_the_retry(server: Server) -> None:
    server.intake.outcome = "not acknowledged by the broker within 5 s"
    response = server.client.post("/v1/events", json=EVENT)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    error = error_of(response)
    assert error["code"] == "not_acknowledged" and "retry with the same event_id" in error["message"]
    assert error["details"] == {"event_id": server.intake.sent[0].event_id}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (orjson.dumps({**EVENT, "event_type": ["view"]}), JSON, 422, "event_type: ['view'] is not one of"),
        (orjson.dumps({**EVENT, "event_type": {"v": 1}}), JSON, 422, "event_type: {'v': 1} is not one of"),
        (orjson.dumps(EVENT)[:-1] + b', "ts": ' + b"9" * 400 + b"}", JSON, 422, "ts: an integer of 400 digits"),
        (orjson.dumps(EVENT)[:-1] + b', "ts": NaN}', JSON, 422, "ts: NaN is not a valid epoch time"),
        (orjson.dumps(EVENT)[:-1] + b', "ts": -Infinity}', JSON, 422, "ts: -Infinity is not a valid epoch time"),
        (orjson.dumps({**EVENT, "extra": 1}), JSON, 422, "unknown field(s): extra"),
        (orjson.dumps({"user_id": "u"}), JSON, 422, "missing field(s): item_id, event_type"),
        (orjson.dumps({**EVENT, "user_id": "x" * 300}), JSON, 422, "user_id: longer than 256"),
        (b"[1, 2]", JSON, 422, "request body must be a JSON object, got list"),
        (b"{oops", JSON, 422, "malformed JSON"),
        (b"", JSON, 422, "request body is missing"),
        (b"\xff\xfe{}", JSON, 422, "malformed JSON"),
        (b'{"events": [' + b"1" * 4400 + b"]}", JSON, 400, "error parsing the body"),
        (b"[" * 5000, JSON, 400, "error parsing the body"),
        (orjson.dumps(EVENT), {"content-type": "text/plain"}, 415, "Content-Type: application/json"),
        (orjson.dumps(EVENT), {}, 415, "Content-Type: application/json"),
        (orjson.dumps(EVENT), {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        (b" " * 2_000_000, JSON, 413, "over the 1048576-byte limit"),
    ],
    ids=lambda v: v[:30] if isinstance(v, (bytes, str)) else None,
)
def test_every_bad_event_gets_a_4xx_with_a_reason(
    server: Server, body: bytes, headers: dict, status: int, message: str
) -> None:
    response = server.client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert message in error_of(response)["message"]
    assert not server.intake.sent


def test_a_streamed_body_is_cut_off_at_the_limit(server: Server) -> None:
    chunks = (b" " * 65536 for _ in range(2000))  # 130 MB, never declared
    response = server.client.post("/v1/events", content=chunks, headers=JSON)
    assert response.status_code == 413 and error_of(response)["code"] == "request_entity_too_large"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional=dict.fromkeys((*EVENT, "ts", "event_id"), json_values)) | json_values)
def test_no_json_body_gets_a_5xx(server: Server, body: object) -> None:
    raw = json.dumps(body).encode()  # Python's encoder: NaN, Infinity and huge integers included
    for path, payload in (("/v1/events", raw), ("/v1/events/batch", b'{"events": [' + raw + b"]}")):
        response = server.client.post(path, content=payload, headers=JSON)
        assert response.status_code < 500, (path, response.text)
        if response.status_code >= 400:
            error_of(response)


# -- batches


def test_a_batch_reports_each_invalid_event_and_accepts_the_rest(server: Server) -> None:
    events = [EVENT, {**EVENT, "event_type": "like"}, {**EVENT, "user_id": "u2"}, "nope"]
    response = server.client.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2 and body["event_ids"] == [e.event_id for e in server.intake.sent]
    assert body["rejected"] == [
        {"index": 1, "reason": "event_type: 'like' is not one of click, purchase, view"},
        {"index": 3, "reason": "event must be a JSON object, got str"},
    ]


def test_a_batch_with_nothing_valid_is_422(server: Server) -> None:
    response = server.client.post("/v1/events/batch", json={"events": [{"x": 1}]})
    assert response.status_code == 422
    assert error_of(response)["details"]["rejected"][0]["index"] == 0


def test_a_batch_not_acknowledged_is_503_with_every_id(server: Server) -> None:
    server.intake.outcome = "not acknowledged by the broker within 5 s"
    response = server.client.post("/v1/events/batch", json={"events": [EVENT, {**EVENT, "event_id": "e2"}]})
    assert response.status_code == 503
    events = error_of(response)["details"]["events"]
    assert [(e["index"], e["acknowledged"]) for e in events] == [(0, False), (1, False)] and events[1][
        "event_id"
    ] == "e2"


@pytest.mark.parametrize(
    ("body", "status"),
    [({"events": []}, 422), ({"events": "x"}, 422), ([EVENT], 422), ({}, 422), ({"events": [EVENT] * 1001}, 413)],
)
def test_bad_batches_are_4xx(server: Server, body: object, status: int) -> None:
    response = server.client.post("/v1/events/batch", json=body)
    assert response.status_code == status, response.text
    error_of(response)


# -- lists


def test_malformed_lists_are_skipped_counted_and_never_served(server: Server) -> None:
    server.publish_lists(a_list("u1"))
    server.publish_lists(
        a_list("u1", items=None) | {"items": None},
        a_list("u1", items="a,b"),
        {k: v for k, v in a_list("u1").items() if k != "items"},
        a_list("u1", items=[{"score": 1.0}]),
        a_list(["u2"]),
        a_list("u3", items=[{"item_id": "a", "score": "high"}]),
        b"{not json",
    )
    assert (server.lists.consumed, server.lists.malformed) == (1, 7)
    response = server.client.get("/v1/users/u1/recommendations")
    assert response.status_code == 200 and response.json()["items"][0]["item_id"] == "a"  # the last valid list
    for user in ("u2", "u3", "['u2']"):
        assert server.client.get(f"/v1/users/{user}/recommendations").status_code == 404
    assert server.client.get("/healthz").json()["lists_malformed"] == 7
    assert "streamrec_lists_malformed_total 7.0" in server.client.get("/metrics").text


def test_a_list_is_served_titled_with_plain_text_reasons(server: Server) -> None:
    server.catalog.on_records([Record(None, encode_item(Item("a", "Heat", category="Crime, Drama")), 0, 0, 0)])
    items = [
        {"item_id": "a", "score": 0.9, "reason": "because you liked <script>x</script>Heat\u202e", "source": "fusion"},
        {"item_id": "b", "score": 0.5},
    ]
    server.publish_lists(a_list("u1", items=items))
    body = server.client.get("/v1/users/u1/recommendations").json()
    assert body["items"] == [
        {"item_id": "a", "score": 0.9, "reason": "because you liked xHeat", "source": "fusion", "title": "Heat"},
        {"item_id": "b", "score": 0.5, "title": "b"},
    ]
    assert body["model"] == "fusion" and body["source_event_id"] == "e1"
    assert [
        i["item_id"] for i in server.client.get("/v1/users/u1/recommendations?k=1&category=drama").json()["items"]
    ] == ["a"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/users/u1/recommendations?k=0", 422, "invalid_request"),
        ("/v1/users/u1/recommendations?k=abc", 422, "invalid_request"),
        ("/v1/users/nobody/recommendations", 404, "not_found"),
        ("/v1/nothing", 404, "not_found"),
        ("/v1/search?q=", 422, "invalid_request"),
    ],
)
def test_reads_answer_errors_in_the_one_shape(server: Server, path: str, status: int, code: str) -> None:
    response = server.client.get(path)
    assert response.status_code == status and error_of(response)["code"] == code


def test_wrong_method_is_405_in_the_one_shape(server: Server) -> None:
    response = server.client.delete("/v1/events")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


# -- health and schema


def test_healthz_is_503_naming_the_reader_that_is_not_ready(server: Server) -> None:
    assert server.client.get("/healthz").status_code == 200
    server.readers[1].caught_up = False
    response = server.client.get("/healthz")
    assert response.status_code == 503 and error_of(response)["details"] == {"readers": {"items": "catching up"}}
    server.readers[0].alive = False
    assert error_of(server.client.get("/healthz"))["details"]["readers"] == {
        "recommendations": "stopped",
        "items": "catching up",
    }


def test_openapi_shows_the_contract_models(server: Server) -> None:
    api = server.client.get("/openapi.json").json()
    body = api["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    listed = api["paths"]["/v1/users/{user_id}/recommendations"]["get"]["responses"]["200"]["content"]
    batch = api["components"]["schemas"]["EventBatch"]["properties"]["events"]["items"]
    assert body == batch == {"$ref": "#/components/schemas/EventMessage"}
    assert listed["application/json"]["schema"] == {"$ref": "#/components/schemas/ServedList"}
    schemas = api["components"]["schemas"]
    assert schemas["EventMessage"]["properties"]["event_type"]["enum"] == ["view", "click", "purchase"]
    assert "reason" in json.dumps(schemas["ServedItem"]) and "ErrorBody" in schemas
