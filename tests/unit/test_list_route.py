"""The list route's lean path answers exactly as the framework's route, behind the same checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamrec.settings import Settings
from streamrec.streams.broadcast import Record
from streamrec.streams.contracts import encode_item
from streamrec.streams.kafka import partition_for
from streamrec.types import Item
from tests.unit.test_http_api import Server, a_list, error_of, serve

KEY = "k" * 32
ITEMS = [{"item_id": i, "score": 1.0 - n / 10} for n, i in enumerate("abcde")]


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve(Settings())


@pytest.mark.parametrize("query", ["", "?k=2", "?k=2&category=drama", "?category=", "?k=100"])
def test_the_lean_path_answers_as_the_framework_route(server: Server, query: str) -> None:
    server.catalog.on_records([Record(None, encode_item(Item("b", "Heat", category="Drama")), 0, 0, 0)])
    server.publish_lists(a_list("u1", items=ITEMS))
    lean = server.client.get(f"/v1/users/u1/recommendations{query}")
    # An extra parameter sends the request through FastAPI's route, which ignores it.
    framework = server.client.get(f"/v1/users/u1/recommendations{query or '?'}&via=framework")
    assert lean.status_code == framework.status_code == 200
    assert lean.json() == framework.json() and lean.headers["content-type"] == "application/json"
    assert 'streamrec_http_requests_total{route="/v1/users/{user_id}/recommendations",status="200"} 2.0' in (
        server.client.get("/metrics").text
    )


@pytest.mark.parametrize("query", ["?k=0", "?k=101", "?k=x", "?k=1&k=2", f"?category={'c' * 201}"])
def test_unusual_queries_get_the_framework_answer(server: Server, query: str) -> None:
    server.publish_lists(a_list("u1", items=ITEMS))
    response = server.client.get(f"/v1/users/u1/recommendations{query}")
    if query == "?k=1&k=2":
        assert response.status_code == 200  # FastAPI reads one of them
    else:
        assert response.status_code == 422 and error_of(response)["code"] == "invalid_request"


def test_the_lean_path_needs_a_key_when_keys_are_set() -> None:
    for server in serve(Settings(http_api_keys=KEY)):
        server.publish_lists(a_list("u1", items=ITEMS))
        assert server.client.get("/v1/users/u1/recommendations").status_code == 401
        ok = server.client.get("/v1/users/u1/recommendations", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.json()["user_id"] == "u1"


def test_a_user_on_a_partition_not_followed_is_misdirected() -> None:
    users = [f"u{n}" for n in range(20)]
    mine = [u for u in users if partition_for(u.encode(), 4) in (0, 1)]
    other = next(u for u in users if u not in mine)
    for server in serve(Settings(serving_partitions="0,1")):
        assert server.client.get(f"/v1/users/{mine[0]}/recommendations").status_code == 404
        response = server.client.get(f"/v1/users/{other}/recommendations")
        assert response.status_code == 421
        assert error_of(response)["details"] == {"partition": partition_for(other.encode(), 4), "followed": [0, 1]}
