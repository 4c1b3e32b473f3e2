"""API keys: bearer tokens on ``/v1/*``, and no open write path on a reachable address.

Keys come from ``http_api_keys`` (comma-separated) and ``http_api_keys_file`` (a mounted
secret). With none, the API is open, which `check_exposure` allows only on loopback
(or with ``http_allow_open=1``, behind a proxy that authenticates). ``/healthz`` and
``/metrics`` stay open for probes and scrapers: they show counts, never user data.
The check runs before the body is read, so an unauthenticated client costs no parsing.

>>> s = Settings(http_api_keys="k" * 32)
>>> sorted(api_keys(s)) == ["k" * 32], bearer_token([(b"authorization", b"Bearer abc")])
(True, 'abc')
>>> check_exposure(Settings(http_host="0.0.0.0"), frozenset())
Traceback (most recent call last):
...
streamrec.serving.auth.InsecureServer: refusing to serve 0.0.0.0 without API keys: set STREAMREC_HTTP_API_KEYS or STREAMREC_HTTP_API_KEYS_FILE (or STREAMREC_HTTP_ALLOW_OPEN=1 behind an authenticating proxy)
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from streamrec.serving.errors import error_response
from streamrec.settings import Settings

PROTECTED_PREFIX = "/v1/"
# A guessable key is no key: tokens shorter than this are refused at start.
MIN_KEY_CHARS = 16
_SEPARATORS = re.compile(r"[,\s]+")


class InsecureServer(RuntimeError):
    """The settings would expose the API without authentication, or with weak keys."""


def api_keys(settings: Settings) -> frozenset[str]:
    """Every configured key (setting and file), each at least `MIN_KEY_CHARS` long."""
    text = settings.http_api_keys
    if settings.http_api_keys_file:
        text += "," + Path(settings.http_api_keys_file).read_text()
    keys = frozenset(k for k in _SEPARATORS.split(text) if k)
    if any(len(k) < MIN_KEY_CHARS for k in keys):
        raise InsecureServer(f"API keys must be at least {MIN_KEY_CHARS} characters long")
    return keys


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: assume it is reachable
        return False


def check_exposure(settings: Settings, keys: frozenset[str]) -> None:
    """Refuse an open API on a reachable address unless explicitly allowed."""
    if not keys and not is_loopback(settings.http_host) and not settings.http_allow_open:
        raise InsecureServer(
            f"refusing to serve {settings.http_host} without API keys: set STREAMREC_HTTP_API_KEYS or "
            "STREAMREC_HTTP_API_KEYS_FILE (or STREAMREC_HTTP_ALLOW_OPEN=1 behind an authenticating proxy)"
        )


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class ApiKeyAuth:
    """ASGI middleware: 401 on ``/v1/*`` without one of ``keys`` (no-op if there are none)."""

    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys and scope["path"].startswith(PROTECTED_PREFIX):
            token = bearer_token(scope["headers"])
            # Compare with every key in constant time: no early exit that timing could reveal.
            matches = [hmac.compare_digest(token.encode("latin-1"), key) for key in self.keys] if token else []
            if not any(matches):
                response = error_response(
                    401, "unauthorized", "send Authorization: Bearer <API key>", headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
