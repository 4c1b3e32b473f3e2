"""Every HTTP answer counted and timed, per route and status, as plain ASGI middleware.

Starlette's ``@app.middleware("http")`` runs each request in a task of its own and streams
the body through a queue: several times the cost of the list route itself. This wraps
``send`` to see the status and reads the route the router (or `ListRoute`) put in the scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# (route path or "unmatched", status, seconds)
Record = Callable[[str, int, float], None]


class Timed:
    """ASGI middleware: ``record(route, status, seconds)`` once per HTTP answer."""

    def __init__(self, app: ASGIApp, record: Record) -> None:
        self.app, self.record = app, record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            self.record(route.path if route else "unmatched", status, time.perf_counter() - started)
