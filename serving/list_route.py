"""``GET /v1/users/{user_id}/recommendations`` without the framework's per-request work.

The stored list is already validated canonical JSON (`streamrec.serving.lists`), so an
answer is: decode it, keep ``k`` entries (of a category, if asked), title them, encode
(`served_list`, tens of µs). `ListRoute` answers the well-formed requests of that route
as a bare ASGI app and hands every other request, including any query it does not
recognise, to the FastAPI app behind it, which validates and answers it as before (so
the error answers do not change). Installed inside the API-key check, it is never open.

>>> from streamrec.streams.catalog import Catalog
>>> raw = b'{"user_id":"u","items":[{"item_id":"a","score":0.5},{"item_id":"b","score":0.25}],"generated_at":2.0}'
>>> served_list(raw, Catalog(), 1, None)
(b'{"user_id":"u","items":[{"item_id":"a","score":0.5,"title":"a"}],"generated_at":2.0}', 2.0)
>>> well_formed(b"k=5&category=Drama", 100), well_formed(b"k=0", 100), well_formed(b"k=5&k=6", 100)
((5, 'Drama'), None, None)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from streamrec.serving.errors import ApiError, error_response
from streamrec.streams.catalog import Catalog

log = logging.getLogger(__name__)

LIST_PATH = "/v1/users/{user_id}/recommendations"
# Starlette's {user_id} matches one path segment of the decoded path: so does this.
_PATH = re.compile(r"/v1/users/([^/]+)/recommendations")
DEFAULT_K = 10
MAX_CATEGORY_CHARS = 200

# (user_id, k, category) -> the answer's body; raises `ApiError` (404, 421).
Answer = Callable[[str, int, str | None], bytes]


def served_list(raw: bytes, catalog: Catalog, k: int, category: str | None) -> tuple[bytes, float]:
    """The answer for a stored list: its first ``k`` entries (in ``category`` if given),
    each with its catalog title; and the list's ``generated_at``."""
    message = orjson.loads(raw)
    entries = message["items"]
    catalog.refresh()  # before the category filter too: it reads the catalog
    if category:
        entries = [e for e in entries if in_category(catalog, e["item_id"], category)]
    message["items"] = [{**e, "title": catalog.title(e["item_id"])} for e in entries[:k]]
    return orjson.dumps(message), float(message["generated_at"])


def in_category(catalog: Catalog, item_id: str, category: str) -> bool:
    """Case-insensitive match against one of the item's comma-separated categories."""
    item = catalog.items.get(item_id)
    wanted = category.strip().lower()
    return item is not None and any(c.strip().lower() == wanted for c in item.category.split(","))


def well_formed(query: bytes, max_k: int) -> tuple[int, str | None] | None:
    """``(k, category)`` of a query this route answers itself, else None (the app will)."""
    if not query:
        return DEFAULT_K, None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    given = dict(pairs)
    if len(given) < len(pairs) or not set(given) <= {"k", "category"}:
        return None
    k = given.get("k", str(DEFAULT_K))
    category = given.get("category")
    if not (k.isascii() and k.isdigit() and 1 <= int(k) <= max_k):
        return None
    if category is not None and len(category) > MAX_CATEGORY_CHARS:
        return None
    return int(k), category


class ListRoute:
    """ASGI middleware: answers well-formed list requests with ``answer``, passes the rest on.

    ``route`` (the app's own route for the path) is set in the scope as the router would,
    so the request is counted under the route's path. It sits outside the framework's
    middleware stack (each layer costs a call per request), so an unexpected failure of
    ``answer`` hands the request to the app as well, whose error handling answers it.
    """

    def __init__(self, app: ASGIApp, answer: Answer, route: Any, max_k: int) -> None:
        self.app, self.answer, self.route, self.max_k = app, answer, route, max_k

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and (match := _PATH.fullmatch(scope["path"])):
            query = well_formed(scope["query_string"], self.max_k)
            if query is not None:
                scope["route"] = self.route
                try:
                    body = self.answer(match[1], *query)
                except ApiError as exc:
                    await error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)(
                        scope, receive, send
                    )
                    return
                except Exception:
                    log.exception("the list route failed; the app answers instead")
                else:
                    await send_json(send, body)
                    return
        await self.app(scope, receive, send)


async def send_json(send: Send, body: bytes) -> None:
    """A 200 with a JSON ``body``, as two ASGI messages (what `Response` sends, without building one)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
