"""A little traffic for a running stack: items, a few users' events, one malformed record."""

from __future__ import annotations

import threading

import httpx

from streamrec.infra.stack import Stack
from streamrec.streams.contracts import encode_event
from streamrec.streams.replay import Pacer, Sender, produce_items, produce_raw, replay
from streamrec.types import Event, Item
from tests.conftest import wait_for

ITEMS = [Item(f"m{i}", f"Movie {i}") for i in range(30)]
USERS = ("u1", "u2", "u3", "u4")
EVENTS_PER_USER = 6
# Paced, so that the events arrive over a few seconds (the dashboard shows a rate, not one spike).
RATE = 20.0
MALFORMED = b'{"user_id": "u1", "item_id": '


def events() -> list[Event]:
    """Each user meets a different run of items, in turns: u1 m0, u2 m3, ..."""
    return [
        Event(user, ITEMS[(3 * u + n) % len(ITEMS)].item_id, "click", 1000.0 + n, f"{user}-{n}")
        for n in range(EVENTS_PER_USER)
        for u, user in enumerate(USERS)
    ]


def feed(stack: Stack) -> dict[str, int]:
    """Announce the items, replay the events and one malformed record; events per user."""
    produce_items(ITEMS, stack.settings)
    produce_raw(stack.settings, stack.settings.topic_events, [("u1", MALFORMED)])
    replay(events(), stack.settings, Pacer(rate=RATE), quiet=True)
    return dict.fromkeys(USERS, EVENTS_PER_USER)


def listed_events(http: httpx.Client, user: str) -> int:
    """How many of ``user``'s events their served list reflects (0: no list yet)."""
    answer = http.get(f"/v1/users/{user}/recommendations")
    return int(answer.json()["user_events"]) if answer.status_code == 200 else 0


def wait_for_lists(stack: Stack, expected: dict[str, int], timeout_s: float) -> bool:
    """Wait until every user's served list reflects their ``expected`` events."""
    http = httpx.Client(base_url=stack.http_url, timeout=5)
    return wait_for(lambda: all(listed_events(http, u) >= n for u, n in expected.items()), timeout_s)


class Trickle:
    """Keep events flowing (other users than `USERS`) from a thread while a page watches.

    >>> with Trickle(stack):  # doctest: +SKIP
    ...     open_the_page()
    """

    def __init__(self, stack: Stack, rate: float = RATE, limit: int = 5000) -> None:
        self.settings, self.rate, self.limit = stack.settings, rate, limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with Sender(self.settings) as out:
            for n in range(self.limit):  # bounded: a forgotten trickle ends by itself
                if self._stop.wait(1 / self.rate):
                    break
                event = Event(f"t{n % 5}", ITEMS[n % len(ITEMS)].item_id, "view", 2000.0 + n, f"t-{n}")
                out.send(self.settings.topic_events, event.user_id, encode_event(event))
