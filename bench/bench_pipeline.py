"""Pipeline benchmark: one worker's sustained events/s and its event->list freshness,
each also as a ratio to the framework alone (the ``bare`` row), through the real broker.

    python bench/bench_pipeline.py                                   # bare + cooccurrence
    python bench/bench_pipeline.py --recommenders cooccurrence,transformer,fusion+tail --json
    python bench/bench_pipeline.py --curve 250,500,1000,2000,5000    # freshness vs rate

Every figure (the backlog, each rate) gets a fresh stack and synthetic Zipf traffic.
``bare`` is bench/bare_worker.py: a Faust agent with the worker's app settings that
writes one table entry per event and nothing else; its "lists" are its changelog
records. The machine is shared and noisy: compare rows of one run (``ratio_to_bare``),
not runs.

Freshness is measured at a fixed rate (``--rate``, and each ``--curve`` rate), from the
producer's send to the publication of the first list that includes the event
(`streams.freshness`). Throughput is events / (time from the first event sent to the
last event included in a list) with the whole backlog produced up front, so it
measures the worker, not the producer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from streamrec.infra.broker import free_port
from streamrec.infra.commands.options import check_recommenders
from streamrec.infra.stack import Stack
from streamrec.models.prequential import Published
from streamrec.models.registry import needs_training
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.freshness import Freshness
from streamrec.streams.lists import ListBook
from streamrec.streams.replay import Pacer, produce_items, replay
from streamrec.streams.sources import synthetic_catalog, synthetic_events
from streamrec.streams.workdir import ready_marker

ITEMS, USERS = 2000, 5000
BARE = "bare"
DRAIN_TIMEOUT_S = 300.0
BARE_READY_TIMEOUT_S = 120.0
WARM_UP_EVENTS = 500
# Seeds namespace each phase's users, so each phase's per-user counters start at zero.
WARM_UP_SEED, BACKLOG_SEED, FIRST_RATE_SEED = 0, 1, 2


class Relay:
    """Hands every list to the current phase's `Freshness`: one reader serves all phases of
    a row (a reader per phase re-read the whole topic first, and the broker's end offsets,
    which would say when it was done, are wrong on the embedded broker)."""

    def __init__(self) -> None:
        self.target = Freshness()

    def published(self, listed: Published) -> None:
        self.target.published(listed)


Follow = Callable[[Relay], TopicReader]


def follow_lists(settings: Settings) -> Follow:
    """Freshness from a real worker's lists on ``recommendations``."""

    def follow(relay: Relay) -> TopicReader:
        return ListBook(on_list=relay.published).follow(settings, "bench")

    return follow


def follow_changelog(settings: Settings) -> Follow:
    """Freshness from the bare worker's changelog: key = user, value = events written."""
    from bare_worker import CHANGELOG  # type: ignore[import-not-found]  # bench/ is on sys.path

    def follow(relay: Relay) -> TopicReader:
        def on_records(records: list[Record]) -> None:
            for r in records:
                if r.key is not None and r.value:
                    user, written = orjson.loads(r.key), orjson.loads(r.value)
                    relay.published(Published(user, (), written, r.timestamp_ms / 1000.0))

        return TopicReader(settings.bootstrap_servers, CHANGELOG, on_records, "bench").start()

    return follow


def run_phase(stack: Stack, relay: Relay, n: int, rate: float | None, seed: int) -> tuple[Freshness, float]:
    """Replay ``n`` events of fresh users (namespaced by ``seed``) and wait for their lists."""
    freshness = relay.target = Freshness()
    events = [
        dataclasses.replace(e, user_id=f"p{seed}-{e.user_id}") for e in synthetic_events(n, USERS, ITEMS, seed=seed)
    ]
    t0 = time.time()
    replay(events, stack.settings, Pacer(rate=rate), total=n, on_sent=lambda e, at: freshness.sent(e.user_id, at))
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while freshness.outstanding and time.monotonic() < deadline:
        time.sleep(0.05)
    return freshness, time.time() - t0


def start_bare(stack: Stack) -> None:
    """Spawn bench/bare_worker.py as one of the stack's processes and wait until it is ready."""
    settings = stack.settings
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    script = Path(__file__).with_name("bare_worker.py")
    with open(stack.log_dir / f"{BARE}.log", "ab") as log:  # the child keeps its own copy
        # Its own process group, as the stack's children: `Stack.stop` signals groups.
        stack.processes[BARE] = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + BARE_READY_TIMEOUT_S
    while not ready_marker(settings.data_dir, BARE).exists():
        if stack.processes[BARE].poll() is not None or time.monotonic() > deadline:
            tail = (stack.log_dir / f"{BARE}.log").read_text()[-2000:]
            raise RuntimeError(f"bare worker did not start:\n{tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def warm_stack(settings: Settings, recommender: str, rate: float) -> Iterator[tuple[Stack, Relay]]:
    """A fresh stack with its worker (or the bare agent), the catalog, a list reader, and
    `WARM_UP_EVENTS` at ``rate`` through it (caches, connections, model)."""
    with Stack(settings, workers=0 if recommender == BARE else 1) as stack:
        if recommender == BARE:
            start_bare(stack)
        follow = follow_changelog(stack.settings) if recommender == BARE else follow_lists(stack.settings)
        relay = Relay()
        reader = follow(relay)
        produce_items(synthetic_catalog(ITEMS), stack.settings)
        time.sleep(1.0)
        run_phase(stack, relay, WARM_UP_EVENTS, rate, seed=WARM_UP_SEED)
        try:
            yield stack, relay
        finally:
            reader.stop()


def bench(recommender: str, rates: list[float], latency_events: int, backlog_events: int, data: Path) -> dict[str, Any]:
    """One row: sustained events/s under a backlog, and freshness at each of ``rates``.

    Each figure gets its own stack: the embedded broker keeps every record in memory and
    its cost per request grows with what it holds (at a steady 500 events/s, the bare
    agent's p50 went 24 -> 47 -> 79 -> 118 ms over four 5,000-event phases of one stack,
    with the broker's CPU rising and the agent's flat), so a phase measured after
    another would carry the broker's slowdown, which Kafka's indexed logs do not have.
    """
    settings = Settings.load(
        overrides={
            "data_dir": str(data / recommender),
            "http_port": free_port(),
            "model_dir": str(data / recommender / "models"),
            "recommender": "cooccurrence" if recommender == BARE else recommender,
        }
    )
    if needs_training(recommender):
        from bench_fusion import save_untrained  # type: ignore[import-not-found]  # torch: only if needed

        save_untrained(Path(settings.model_dir), synthetic_catalog(ITEMS))
    with warm_stack(settings, recommender, rates[0]) as (stack, relay):
        backlog, wall = run_phase(stack, relay, backlog_events, None, seed=BACKLOG_SEED)
    curve = {}
    for i, rate in enumerate(rates):
        with warm_stack(settings, recommender, rate) as (stack, relay):
            fresh, _ = run_phase(stack, relay, latency_events, rate, seed=FIRST_RATE_SEED + i)
        p = fresh.percentiles_ms((50, 99))
        curve[rate] = {"p50_ms": p["p50"], "p99_ms": p["p99"], "unmatched": fresh.outstanding}
    first = curve[rates[0]]
    return {
        "recommender": recommender,
        "sustained_eps": backlog_events / wall,
        "rate": rates[0],
        "p50_ms": first["p50_ms"],
        "p99_ms": first["p99_ms"],
        "curve": curve,
        "backlog_events": backlog_events,
        "latency_events": latency_events,
        "unmatched": backlog.outstanding + sum(c["unmatched"] for c in curve.values()),
    }


def rates_of(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float]:
    """Click callback: ``"250,500"`` -> [250.0, 500.0]."""
    try:
        return [float(r) for r in value.split(",") if r.strip()] if value else []
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def print_table(rows: list[dict], rates: list[float]) -> None:
    table = Table(title=f"pipeline: 1 worker, {ITEMS} items, {USERS} users, Zipf traffic")
    for column in ("recommender", "sustained ev/s", "ratio to bare", *(f"p50/p99 ms @{r:g}/s" for r in rates)):
        table.add_column(column, justify="right")
    for r in rows:
        cells = [f"{r['curve'][rate]['p50_ms']:.1f} / {r['curve'][rate]['p99_ms']:.1f}" for rate in rates]
        table.add_row(r["recommender"], f"{r['sustained_eps']:,.0f}", f"{r['ratio_to_bare']:.2f}", *cells)
    Console(width=160).print(table)


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.option(
    "--recommenders", default="cooccurrence", show_default=True, callback=check_recommenders, help="Comma list."
)
@click.option("--rate", type=float, default=1000.0, show_default=True, help="Events/s of the freshness phase.")
@click.option("--curve", default=None, callback=rates_of, help="More freshness rates, e.g. 250,500,1000,2000,5000.")
@click.option("--latency-events", type=int, default=10_000, show_default=True, help="Events per freshness rate.")
@click.option("--backlog-events", type=int, default=30_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
@click.option("--out", default="bench/results/pipeline.json", show_default=True, type=click.Path(dir_okay=False))
def main(
    recommenders: tuple[str, ...],
    rate: float,
    curve: list[float],
    latency_events: int,
    backlog_events: int,
    as_json: bool,
    out: str,
) -> None:
    rates = [rate, *(r for r in curve if r != rate)]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(r, rates, latency_events, backlog_events, Path(tmp)) for r in (BARE, *recommenders)]
    for row in rows:
        row["ratio_to_bare"] = row["sustained_eps"] / rows[0]["sustained_eps"]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_table(rows, rates)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
