"""The HTTP face: serves the lists the workers published; never computes them itself.

- ``GET /v1/users/{user_id}/recommendations?k=10``: the latest list (404 if none yet; 421 if
  this server does not follow the user's partition, see ``serving_partitions``); answered
  from the stored canonical JSON (`streamrec.serving.list_route`)
- ``POST /v1/events``: validate, produce to ``events`` keyed by user; 202 only once the
  broker acknowledged it (503 if not within ``http_ack_timeout_s``)
- ``POST /v1/events/batch``: ``{"events": [...]}``, each validated; 202 with counts once
  every valid one is acknowledged, invalid ones reported by index
- ``GET /v1/search?q=text&k=10``: items whose text matches the query (semantic)
- ``GET /v1/items/{item_id}/similar?k=10``: items the model places near this one
- ``GET /healthz`` (200 when every topic reader is alive and caught up, else 503),
  ``GET /metrics`` (Prometheus text); both open, ``/v1/*`` needs an API key if any is set
- ``GET /v1/experiments``: each A/B experiment's arms with 95% intervals and differences
  from control (`streamrec.serving.experiments`)
- ``GET /dashboard`` (open: a static page) polls ``GET /v1/dashboard/stats?user=u1``
  (`streamrec.serving.dashboard`)

Every input gets a 2xx or 4xx answer; every error has one shape (`streamrec.serving.errors`).
Bodies are bounded by ``http_max_body_bytes`` while they are read (413), before any parsing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from streamrec.serving import errors
from streamrec.serving.auth import ApiKeyAuth, api_keys, check_exposure
from streamrec.serving.dashboard import Dashboard, Fetch, Watch, fetch_text, watch_topics
from streamrec.serving.errors import ApiError, ErrorBody
from streamrec.serving.experiments import Board
from streamrec.serving.intake import Intake, Outcome
from streamrec.serving.limits import BodyLimit
from streamrec.serving.list_route import LIST_PATH, ListRoute, served_list
from streamrec.serving.lists import LatestLists
from streamrec.serving.responses import (
    Accepted,
    BatchAccepted,
    EventBatch,
    Health,
    Rejected,
    SearchResult,
    ServedItem,
    ServedList,
    SimilarItems,
)
from streamrec.serving.semantic import NoModel, SemanticIndex
from streamrec.serving.timing import Timed
from streamrec.settings import Settings
from streamrec.streams.broadcast import TopicReader
from streamrec.streams.catalog import Catalog
from streamrec.streams.contracts import EventMessage, InvalidEvent, RecommendedItem, validate_event
from streamrec.streams.kafka import partition_for
from streamrec.streams.metrics import ServerMetrics
from streamrec.types import Event

MAX_K = 100
# One page, no build step: its script and styles are inline; no CDN (it may have no internet).
DASHBOARD_PAGE = resources.files("streamrec.serving").joinpath("dashboard.html").read_text()
# Seconds a client should wait before retrying an unacknowledged event.
RETRY_AFTER_S = 1
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 413, 415, 421, 422, 503)
}


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> list[Outcome]: ...

    def close(self) -> None: ...


class Reader(Protocol):
    topic: str

    @property
    def alive(self) -> bool: ...

    @property
    def caught_up(self) -> bool: ...

    def stop(self) -> None: ...


Follow = Callable[[Settings, LatestLists, Catalog], list[Reader]]


def follow_topics(settings: Settings, lists: LatestLists, catalog: Catalog) -> list[Reader]:
    """Start the readers a server needs: the published lists (its partitions, from the offsets
    its store reached) and the catalog."""
    return [
        TopicReader(
            settings.bootstrap_servers,
            settings.topic_recommendations,
            lists.on_records,
            "serving",
            partitions=settings.served_partitions,
            start=lists.offsets(),
        ).start(),
        catalog.follow(settings.bootstrap_servers, settings.topic_items, "serving"),
    ]


def reader_problem(reader: Reader) -> str | None:
    """None if ``reader`` is ready, else what is wrong with it."""
    if not reader.alive:
        return "stopped"
    return None if reader.caught_up else "catching up"


def create_app(
    settings: Settings,
    make_intake: Callable[[Settings], Publisher] = Intake,
    follow: Follow = follow_topics,
    watch: Watch = watch_topics,
    fetch: Fetch = fetch_text,
) -> ASGIApp:
    """The ASGI app; refuses (`InsecureServer`) to expose an open API on a reachable host.

    ``watch`` starts the dashboard's topic readers, ``fetch`` reads a worker's metrics page.
    """
    keys = api_keys(settings)
    check_exposure(settings, keys)
    board = Board(settings)
    lists = LatestLists(settings.lists_dir or None, settings.lists_cache_users, board.on_message)
    catalog = Catalog()
    semantic = SemanticIndex(settings, catalog)
    metrics = ServerMetrics(lists)
    dashboard = Dashboard(
        settings, lambda: _catalog_size(catalog), watch, fetch, lambda: board.summary(_catalog_size(catalog))
    )
    running: dict[str, Any] = {"readers": []}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running["intake"] = make_intake(settings)
        running["readers"] = follow(settings, lists, catalog)
        yield
        for reader in running["readers"]:
            reader.stop()
        dashboard.stop()
        running["intake"].close()
        lists.close()

    # Off: the server exports Prometheus metrics itself, and FastAPI's OpenTelemetry hooks
    # cost ~50 µs a request looking for providers nobody configured (a third of a list answer).
    app = FastAPI(title="streamrec", lifespan=lifespan, telemetry={"tracing": False, "metrics": False, "logs": False})
    errors.install(app)

    async def publish(events: list[Event]) -> list[Outcome]:
        outcomes = await running["intake"].publish(events)
        for outcome in outcomes:
            metrics.events.labels("accepted" if outcome is None else "unacknowledged").inc()
        return outcomes

    followed = settings.served_partitions

    def answer_list(user_id: str, k: int, category: str | None) -> bytes:
        raw = lists.get(user_id)
        if raw is None:
            if (
                followed is not None
                and (partition := partition_for(user_id.encode(), settings.partitions)) not in followed
            ):
                raise ApiError(
                    421,
                    "misdirected",
                    f"user {user_id!r} is on partition {partition}, not followed here",
                    details={"partition": partition, "followed": sorted(followed)},
                )
            raise ApiError(404, "not_found", f"no recommendations for user {user_id!r} yet")
        body, generated_at = served_list(raw, catalog, k, category)
        metrics.list_age.observe(max(0.0, time.time() - generated_at))
        return body

    @app.get(LIST_PATH, response_model=ServedList, responses=ERRORS)
    async def recommendations(
        user_id: str, k: int = Query(10, ge=1, le=MAX_K), category: str | None = Query(None, max_length=200)
    ) -> Response:
        """Answered by `ListRoute` unless the query is unusual; same answer either way."""
        return Response(answer_list(user_id, k, category), media_type="application/json")

    @app.get("/v1/search", response_model=SearchResult, responses=ERRORS)
    def search(q: str = Query(..., min_length=1, max_length=500), k: int = Query(10, ge=1, le=MAX_K)) -> SearchResult:
        return SearchResult(query=q, items=_titled(catalog, _semantic(lambda: semantic.search(q, k))))

    @app.get("/v1/items/{item_id}/similar", response_model=SimilarItems, responses=ERRORS)
    def similar(item_id: str, k: int = Query(10, ge=1, le=MAX_K)) -> SimilarItems:
        catalog.refresh()
        if item_id not in catalog:
            raise ApiError(404, "not_found", f"unknown item {item_id!r}")
        return SimilarItems(item_id=item_id, items=_titled(catalog, _semantic(lambda: semantic.similar(item_id, k))))

    # Both event routes: 202 once stored, JSON bodies only.
    json_only = [Depends(json_content)]

    @app.post("/v1/events", response_model=Accepted, status_code=202, responses=ERRORS, dependencies=json_only)
    async def post_event(message: EventMessage) -> Accepted:
        event = _with_id(message.to_event())
        [outcome] = await publish([event])
        if outcome is not None:
            reason = f"{outcome}; it may or may not be stored: retry with the same event_id"
            raise _not_acknowledged(reason, {"event_id": event.event_id})
        return Accepted(event_id=event.event_id or "")

    @app.post(
        "/v1/events/batch", response_model=BatchAccepted, status_code=202, responses=ERRORS, dependencies=json_only
    )
    async def post_batch(batch: EventBatch) -> BatchAccepted:
        if len(batch.events) > settings.http_batch_max:
            raise ApiError(
                413, "too_many_events", f"{len(batch.events)} events, over the limit of {settings.http_batch_max}"
            )
        valid, rejected = _validated(batch.events)
        if not valid:
            raise ApiError(
                422, "invalid_request", "no valid event in the batch", details={"rejected": _dumped(rejected)}
            )
        outcomes = await publish([event for _, event in valid])
        if any(outcome is not None for outcome in outcomes):
            acked = [
                {"index": i, "event_id": e.event_id, "acknowledged": o is None}
                for (i, e), o in zip(valid, outcomes, strict=True)
            ]
            missing = sum(not a["acknowledged"] for a in acked)
            first = next(o for o in outcomes if o)
            raise _not_acknowledged(
                f"{missing} of {len(valid)} events not acknowledged ({first}): retry them with the same event_ids",
                {"events": acked, "rejected": _dumped(rejected)},
            )
        return BatchAccepted(accepted=len(valid), event_ids=[e.event_id or "" for _, e in valid], rejected=rejected)

    @app.get("/v1/experiments", responses=ERRORS)
    def experiments() -> dict[str, Any]:
        return board.summary(_catalog_size(catalog))

    @app.get("/healthz", response_model=Health, responses={503: {"model": ErrorBody}})
    def healthz() -> Health:
        problems = {reader.topic: problem for reader in running["readers"] if (problem := reader_problem(reader))}
        if problems:
            listed = ", ".join(f"{topic}: {problem}" for topic, problem in problems.items())
            raise ApiError(503, "not_ready", f"readers not ready ({listed})", details={"readers": problems})
        catalog.refresh()
        return Health(
            users_with_lists=len(lists),
            lists_consumed=lists.consumed,
            lists_malformed=lists.malformed,
            items=len(catalog),
        )

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page() -> HTMLResponse:
        return HTMLResponse(DASHBOARD_PAGE)

    @app.get("/v1/dashboard/stats", responses=ERRORS)
    def dashboard_stats(user: str | None = Query(None, min_length=1, max_length=200)) -> dict[str, Any]:
        return dashboard.stats(user)

    # Outside in: `Timed` sees every answer, the key check runs before anything else, the
    # list route answers behind it, and the app checks body sizes before reading them. The
    # first three wrap FastAPI rather than sit in its middleware stack: its layers cost
    # a third of a list answer (py-spy under wrk), and the list route is most requests.
    route = next(r for r in app.routes if getattr(r, "path", None) == LIST_PATH)
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
    return Timed(ApiKeyAuth(ListRoute(app, answer_list, route, MAX_K), keys), metrics.answered)


def json_content(request: Request) -> None:
    """415 unless the body is declared JSON (FastAPI would otherwise read it as bytes)."""
    mime = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not (mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))):
        raise ApiError(415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")


def _not_acknowledged(message: str, details: dict[str, Any]) -> ApiError:
    """503 for events the broker did not acknowledge in time: the client should retry."""
    return ApiError(503, "not_acknowledged", message, details, headers={"Retry-After": str(RETRY_AFTER_S)})


def _validated(data: list[Any]) -> tuple[list[tuple[int, Event]], list[Rejected]]:
    """Each event of a batch validated on its own: (index, event) pairs and rejections."""
    valid, rejected = [], []
    for index, item in enumerate(data):
        try:
            valid.append((index, _with_id(validate_event(item))))
        except InvalidEvent as exc:
            rejected.append(Rejected(index=index, reason=str(exc)))
    return valid, rejected


def _dumped(rejected: list[Rejected]) -> list[dict[str, Any]]:
    return [r.model_dump() for r in rejected]


def _titled(catalog: Catalog, entries: Sequence[RecommendedItem] | list[tuple[str, float]]) -> list[ServedItem]:
    """Entries with their catalog titles; ranked ``(item_id, score)`` pairs become entries."""
    catalog.refresh()
    items = [
        e
        if isinstance(e, RecommendedItem)
        else RecommendedItem(item_id=e[0], score=round(float(e[1]), 6), reason=None, source=None)
        for e in entries
    ]
    return [ServedItem(**dict(item), title=catalog.title(item.item_id)) for item in items]


def _catalog_size(catalog: Catalog) -> int:
    catalog.refresh()
    return len(catalog)


def _semantic(answer: Callable[[], list[tuple[str, float]]]) -> list[tuple[str, float]]:
    try:
        return answer()
    except NoModel as exc:
        raise ApiError(503, "no_model", str(exc)) from None


def _with_id(event: Event) -> Event:
    """Give an event an id so the worker can drop a retried duplicate."""
    if event.event_id is not None:
        return event
    return Event(event.user_id, event.item_id, event.event_type, event.ts, uuid.uuid4().hex)
