"""The HTTP face: serves the lists the workers published; never computes them itself.

- ``GET /v1/users/{user_id}/recommendations?k=10``: the latest list (404 if none yet)
- ``POST /v1/events``: validate, produce to ``events`` keyed by user, 202 (422 if bad)
- ``GET /v1/search?q=text&k=10``: items whose text matches the query (semantic)
- ``GET /v1/items/{item_id}/similar?k=10``: items the model places near this one
- ``GET /healthz``, ``GET /metrics`` (Prometheus text)
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from confluent_kafka import Producer
from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.catalog import Catalog
from streamrec.types import Event
from streamrec.streams.contracts import InvalidEvent, encode_event, validate_event
from streamrec.streams.replay import producer
from streamrec.serving.semantic import NoModel, SemanticIndex

MAX_K = 100


class LatestLists:
    """user_id -> the newest ``recommendations`` record, fed by a reader thread."""

    def __init__(self) -> None:
        self._lists: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.consumed = 0
        self.malformed = 0

    def on_records(self, records: list[Record]) -> None:
        for record in records:
            try:
                message = orjson.loads(record.value)
                user_id = message["user_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                self.malformed += 1
                continue
            with self._lock:
                self._lists[user_id] = message
                self.consumed += 1

    def get(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._lists.get(user_id)

    def __len__(self) -> int:
        return len(self._lists)


class Metrics:
    """Prometheus collectors of one server."""

    def __init__(self, lists: LatestLists) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("streamrec_http_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.events = Counter("streamrec_events_received", "Events posted", ["outcome"], registry=self.registry)
        Gauge("streamrec_users_with_lists", "Users with a list", registry=self.registry).set_function(lambda: len(lists))
        Gauge("streamrec_lists_consumed", "Lists read from the topic", registry=self.registry).set_function(
            lambda: lists.consumed
        )


def create_app(settings: Settings) -> FastAPI:
    lists, catalog = LatestLists(), Catalog()
    semantic = SemanticIndex(settings, catalog)
    metrics = Metrics(lists)
    out: Producer = producer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        readers = [
            TopicReader(settings.bootstrap_servers, settings.topic_recommendations, lists.on_records, "serving").start(),
            catalog.follow(settings.bootstrap_servers, settings.topic_items, "serving"),
        ]
        yield
        for reader in readers:
            reader.stop()
        out.flush(5)

    app = FastAPI(title="streamrec", lifespan=lifespan)

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.requests.labels(route.path if route else "unmatched", str(response.status_code)).inc()
        return response

    @app.get("/v1/users/{user_id}/recommendations")
    def recommendations(
        user_id: str, k: int = Query(10, ge=1, le=MAX_K), category: str | None = Query(None, max_length=200)
    ) -> Any:
        message = lists.get(user_id)
        if message is None:
            return JSONResponse({"error": f"no recommendations for user {user_id!r} yet"}, status_code=404)
        entries = _titled(catalog, message["items"])
        if category:
            entries = [e for e in entries if _in_category(catalog, e["item_id"], category)]
        return {**message, "items": entries[:k]}

    @app.get("/v1/search")
    def search(q: str = Query(..., min_length=1, max_length=500), k: int = Query(10, ge=1, le=MAX_K)) -> Any:
        return _semantic(lambda: {"query": q, "items": _titled(catalog, _entries(semantic.search(q, k)))})

    @app.get("/v1/items/{item_id}/similar")
    def similar(item_id: str, k: int = Query(10, ge=1, le=MAX_K)) -> Any:
        catalog.refresh()
        if item_id not in catalog:
            return JSONResponse({"error": f"unknown item {item_id!r}"}, status_code=404)
        return _semantic(lambda: {"item_id": item_id, "items": _titled(catalog, _entries(semantic.similar(item_id, k)))})

    @app.post("/v1/events", status_code=202)
    def post_event(body: Any = Body(...)) -> Any:
        try:
            event = validate_event(body)
        except InvalidEvent as exc:
            metrics.events.labels("rejected").inc()
            return JSONResponse({"error": "invalid event", "reasons": [str(exc)]}, status_code=422)
        event = _with_id(event)
        out.produce(settings.topic_events, key=event.user_id.encode(), value=encode_event(event))
        out.poll(0)
        metrics.events.labels("accepted").inc()
        return {"accepted": True, "event_id": event.event_id}

    @app.get("/healthz")
    def healthz() -> Any:
        catalog.refresh()
        return {"status": "ok", "users_with_lists": len(lists), "lists_consumed": lists.consumed, "items": len(catalog)}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _entries(ranked: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"item_id": item_id, "score": round(score, 6)} for item_id, score in ranked]


def _titled(catalog: Catalog, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    catalog.refresh()
    return [{**entry, "title": catalog.title(entry["item_id"])} for entry in entries]


def _in_category(catalog: Catalog, item_id: str, category: str) -> bool:
    """Case-insensitive match against one of the item's comma-separated categories."""
    item = catalog.items.get(item_id)
    wanted = category.strip().lower()
    return item is not None and any(c.strip().lower() == wanted for c in item.category.split(","))


def _semantic(answer: Any) -> Any:
    try:
        return answer()
    except NoModel as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)


def _with_id(event: Event) -> Event:
    """Give an event an id so the worker can drop a retried duplicate."""
    if event.event_id is not None:
        return event
    return Event(event.user_id, event.item_id, event.event_type, event.ts, uuid.uuid4().hex)
