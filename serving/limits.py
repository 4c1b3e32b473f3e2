"""Request bodies bounded while they are read: 413 past the limit, before any parsing.

A declared ``Content-Length`` over the limit is refused without reading a byte; a body
without one (chunked) is counted as it arrives and refused at the first chunk past the
limit, so a 100 MB POST never sits in memory. Starlette's own limiter answers 413 in
plain text; this one keeps the API's error shape (`streamrec.serving.errors`).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamrec.serving.errors import error_response

TOO_LARGE = "request_entity_too_large"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body; the app's HTTP error handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the {limit}-byte limit")


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, TOO_LARGE, BodyTooLarge(self.max_bytes).detail)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)
