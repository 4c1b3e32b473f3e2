"""The list route's fast path: its own answers, and what it hands to the app behind it."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from streamrec.serving.errors import ApiError
from streamrec.serving.list_route import LIST_PATH, ListRoute

PATH = "/v1/users/u1/recommendations"


def behind() -> Starlette:
    """The app the route hands requests to: it says so in its answer."""

    async def handled(request: Request) -> JSONResponse:
        return JSONResponse({"by": "app", "query": request.url.query}, status_code=500)

    return Starlette(routes=[Route(LIST_PATH, handled)])


def client(answer: object) -> TestClient:
    app = behind()
    return TestClient(ListRoute(app, answer, app.routes[0], max_k=100))  # type: ignore[arg-type]


def test_a_well_formed_request_is_answered_by_the_route() -> None:
    answer = client(lambda user, k, category: f'{{"user":"{user}","k":{k}}}'.encode()).get(PATH + "?k=3")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"user": "u1", "k": 3}


def test_an_api_error_is_answered_with_its_status() -> None:
    def missing(user: str, k: int, category: str | None) -> bytes:
        raise ApiError(404, "not_found", f"no recommendations for user {user!r} yet")

    answer = client(missing).get(PATH)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_an_unexpected_failure_is_handed_to_the_app() -> None:
    def broken(user: str, k: int, category: str | None) -> bytes:
        raise RuntimeError("store closed")

    answer = client(broken).get(PATH + "?k=2")
    assert answer.status_code == 500
    assert answer.json() == {"by": "app", "query": "k=2"}


def test_an_unusual_query_goes_to_the_app() -> None:
    answer = client(lambda *_: b"{}").get(PATH + "?k=0")
    assert answer.json()["by"] == "app"
