"""``streamrec demo``: MovieLens-100K through the whole stack, and a summary of what came out.

Starts the embedded broker, a worker and the HTTP server; announces the catalog;
replays the ratings as events (plus a handful of deliberately bad ones) at a fixed
rate; follows ``recommendations`` and ``events.dlq`` like any Kafka consumer would;
then prints counts, freshness, and a few users' lists fetched over HTTP.
"""

from __future__ import annotations

import itertools
import time

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.freshness import Freshness
from streamrec.streams.lists import ListBook
from streamrec.streams.replay import Pacer, produce_items, produce_raw, replay
from streamrec.streams.sources import movielens_events, movielens_items

# Bad input the demo injects to show the dead-letter path: (key, value).
BAD_EVENTS: tuple[tuple[str | None, bytes], ...] = (
    ("1", b"{not json"),
    ("1", b'{"user_id": "1", "item_id": "50"}'),
    ("1", b'{"user_id": "1", "item_id": "50", "event_type": "like"}'),
    ("1", b'{"user_id": "1", "item_id": "no-such-movie", "event_type": "view"}'),
    ("", b'{"user_id": "", "item_id": "50", "event_type": "view"}'),
)
DRAIN_TIMEOUT_S = 60.0
SHOW_USERS = 3


def run_demo(settings: Settings, rate: float, limit: int | None) -> None:
    console = Console()
    events = list(itertools.islice(movielens_events(), limit))
    items = movielens_items()
    titles = {item.item_id: item.title for item in items}
    console.print(f"[bold]streamrec demo[/]: {len(events):,} MovieLens-100K events, {len(items):,} movies")
    with Stack(settings, serve=True) as stack:
        console.print(f"stack up: broker {stack.settings.broker}, HTTP {stack.http_url}")
        produce_items(items, stack.settings)
        freshness, dead = Freshness(), list[Record]()
        book = ListBook(on_list=freshness.published)
        readers = [
            book.follow(stack.settings, "demo"),
            TopicReader(stack.settings.bootstrap_servers, stack.settings.topic_dlq, dead.extend, "demo").start(),
        ]
        produce_raw(stack.settings, stack.settings.topic_events, BAD_EVENTS)
        stats = replay(
            events,
            stack.settings,
            Pacer(rate=rate),
            total=len(events),
            on_sent=lambda e, at: freshness.sent(e.user_id, at),
        )
        _drain(freshness, dead, len(BAD_EVENTS))
        for reader in readers:
            reader.stop()
        _summary(console, stack, stats.events, stats.rate, freshness, book, dead, events, titles)


def _drain(freshness: Freshness, dead: list[Record], bad: int) -> None:
    """Wait until every replayed event is in a published list and every bad one dead-lettered."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while (freshness.outstanding or len(dead) < bad) and time.monotonic() < deadline:
        time.sleep(0.2)


def _summary(
    console: Console,
    stack: Stack,
    sent: int,
    rate: float,
    freshness: Freshness,
    book: ListBook,
    dead: list[Record],
    events: list,
    titles: dict[str, str],
) -> None:
    latency = freshness.percentiles_ms()
    table = Table(title="pipeline summary", show_header=False)
    table.add_row(
        "events in", f"{sent + len(BAD_EVENTS):,} ({sent:,} valid at {rate:,.0f} ev/s, {len(BAD_EVENTS)} bad)"
    )
    table.add_row("recommendation messages out", f"{book.lists:,}")
    table.add_row("lists made by", ", ".join(f"{name} ({n:,})" for name, n in book.models.most_common()))
    table.add_row("dead-lettered", f"{len(dead)}")
    table.add_row("events not yet in a list", f"{freshness.outstanding}")
    table.add_row("event→recommendation latency", f"p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms")
    console.print(table)
    for record in dead:
        console.print(f"  dlq: {orjson.loads(record.value)['reason']}")
    for user_id in list(dict.fromkeys(e.user_id for e in reversed(events)))[:SHOW_USERS]:
        _show_user(console, stack, user_id, events, titles)


def _show_user(console: Console, stack: Stack, user_id: str, events: list, titles: dict[str, str]) -> None:
    response = httpx.get(f"{stack.http_url}/v1/users/{user_id}/recommendations", params={"k": 10}, timeout=5)
    recent = [e for e in events if e.user_id == user_id][-3:]
    table = Table(title=f"user {user_id}: GET /v1/users/{user_id}/recommendations → {response.status_code}")
    table.add_column("#")
    table.add_column("recommended")
    table.add_column("score", justify="right")
    for rank, entry in enumerate(response.json().get("items", []), 1):
        table.add_row(str(rank), entry["title"], f"{entry['score']:.3f}")
    console.print("recent: " + "; ".join(f"{e.event_type} {titles.get(e.item_id, e.item_id)}" for e in recent))
    console.print(table)
