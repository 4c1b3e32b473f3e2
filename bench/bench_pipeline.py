"""Pipeline benchmark: event->recommendation latency at a fixed rate, and one worker's
maximum sustained events/s, through the real broker, worker and topics.

    python bench/bench_pipeline.py                      # cooccurrence
    python bench/bench_pipeline.py --recommenders cooccurrence,transformer

Each recommender gets a fresh stack; both phases use synthetic Zipf traffic. Latency is
measured from the producer's send to the worker's publication of the first list that
includes the event (`streams.freshness`). Throughput is events / (time from the first
event sent to the last event included in a list) with the whole backlog produced up
front, so it measures the worker, not the producer.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from streamrec.infra.broker import free_port
from streamrec.infra.commands.options import check_recommenders
from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.freshness import Freshness
from streamrec.streams.lists import ListBook
from streamrec.streams.replay import Pacer, produce_items, replay
from streamrec.streams.sources import synthetic_catalog, synthetic_events

ITEMS, USERS = 2000, 5000
DRAIN_TIMEOUT_S = 300.0
# Earlier phases' lists are read back first (the reader starts at offset 0).
CATCH_UP_TIMEOUT_S = 30.0


def run_phase(stack: Stack, n: int, rate: float | None, seed: int, models: set[str]) -> tuple[Freshness, float]:
    freshness = Freshness()
    book = ListBook(on_list=freshness.published)
    # Users are namespaced per phase so each phase's per-user counters start at zero.
    events = [
        dataclasses.replace(e, user_id=f"p{seed}-{e.user_id}") for e in synthetic_events(n, USERS, ITEMS, seed=seed)
    ]
    reader = book.follow(stack.settings, f"bench{seed}")
    reader.wait_caught_up(CATCH_UP_TIMEOUT_S)
    t0 = time.time()
    replay(events, stack.settings, Pacer(rate=rate), total=n, on_sent=lambda e, at: freshness.sent(e.user_id, at))
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while freshness.outstanding and time.monotonic() < deadline:
        time.sleep(0.05)
    wall = time.time() - t0
    reader.stop()
    models.update(name for name in book.models if name)
    return freshness, wall


def bench(recommender: str, rate: float, latency_events: int, backlog_events: int, data: Path) -> dict:
    settings = Settings.load(
        overrides={"data_dir": str(data / recommender), "http_port": free_port(), "recommender": recommender}
    )
    with Stack(settings) as stack:
        produce_items(synthetic_catalog(ITEMS), stack.settings)
        time.sleep(1.0)
        models: set[str] = set()
        run_phase(stack, 500, rate, seed=0, models=set())  # warm-up: caches, connections, model
        fresh, _ = run_phase(stack, latency_events, rate, seed=1, models=models)
        backlog, wall = run_phase(stack, backlog_events, None, seed=2, models=models)
    p = fresh.percentiles_ms()
    return {
        "recommender": recommender,
        "served_by": sorted(models),
        "rate": rate,
        "latency_p50_ms": p["p50"],
        "latency_p95_ms": p["p95"],
        "latency_p99_ms": p["p99"],
        "latency_events": latency_events,
        "sustained_events_per_s": backlog_events / wall,
        "backlog_events": backlog_events,
        "unmatched": fresh.outstanding + backlog.outstanding,
    }


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.option(
    "--recommenders", default="cooccurrence", show_default=True, callback=check_recommenders, help="Comma list."
)
@click.option("--rate", type=float, default=500.0, show_default=True, help="Events/s of the latency phase.")
@click.option("--latency-events", type=int, default=10_000, show_default=True)
@click.option("--backlog-events", type=int, default=30_000, show_default=True)
@click.option("--out", default="bench/results/pipeline.json", show_default=True, type=click.Path(dir_okay=False))
def main(recommenders: tuple[str, ...], rate: float, latency_events: int, backlog_events: int, out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(r, rate, latency_events, backlog_events, Path(tmp)) for r in recommenders]
    table = Table(title=f"pipeline: 1 worker, {ITEMS} items, {USERS} users, Zipf traffic")
    for column in (
        "recommender",
        "lists made by",
        f"p50 ms @{rate:g}/s",
        "p95 ms",
        "p99 ms",
        "sustained ev/s",
        "unmatched",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["recommender"],
            ", ".join(r["served_by"]),
            f"{r['latency_p50_ms']:.1f}",
            f"{r['latency_p95_ms']:.1f}",
            f"{r['latency_p99_ms']:.1f}",
            f"{r['sustained_events_per_s']:,.0f}",
            str(r["unmatched"]),
        )
    Console(width=120).print(table)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
