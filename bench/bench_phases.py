"""Consecutive phases of one stack at a steady rate: does freshness drift, and whose CPU grows?

    python bench/bench_phases.py                                  # bare agent, 4 x 5,000 at 500/s
    python bench/bench_phases.py --recommender transformer --rate 1000 --phases 2 --events 10000

One stack (as bench/bench_pipeline.py's `warm_stack`), then ``--phases`` phases of
``--events`` events of fresh users at ``--rate``. Per phase: freshness p50 / p99 / max,
CPU seconds of the embedded broker and of the worker (or bare agent), and for a real
worker its full garbage collections (`streamrec_worker_gc_pause_seconds`, generation 2).
The embedded broker keeps every record in memory: its CPU per phase grows while the
worker's stays flat, which is why bench_pipeline.py measures each figure on its own stack.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import httpx
from bench_pipeline import BARE, ITEMS, run_phase, warm_stack  # type: ignore[import-not-found]
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table
from scale_tools import cpu_seconds  # type: ignore[import-not-found]

from streamrec.infra.broker import free_port
from streamrec.infra.stack import Stack
from streamrec.models.registry import needs_training
from streamrec.settings import Settings
from streamrec.streams.sources import synthetic_catalog

FIRST_SEED = 10  # phases' users apart from the warm-up's (seed 0)


def full_collections(stack: Stack) -> tuple[float, float]:
    """(count, seconds) of the worker's generation-2 collections so far; zeros for the bare agent."""
    url = stack.metrics_urls.get("worker-0")
    if url is None:
        return 0.0, 0.0
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(httpx.get(url, timeout=5).text)
        for s in family.samples
        if s.name.startswith("streamrec_worker_gc_pause_seconds") and s.labels.get("generation") == "2"
    }
    return samples.get("streamrec_worker_gc_pause_seconds_count", 0.0), samples.get(
        "streamrec_worker_gc_pause_seconds_sum", 0.0
    )


def usage(stack: Stack, worker_pid: int) -> tuple[float, float, float, float]:
    """Broker CPU s, worker CPU s, and the worker's full collections (count, s) so far."""
    return (cpu_seconds(stack.broker.pid) if stack.broker and stack.broker.pid else 0.0,
            cpu_seconds(worker_pid), *full_collections(stack))  # fmt: skip


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.option("--recommender", default=BARE, show_default=True, help="bare, or a recommender name.")
@click.option("--rate", type=float, default=500.0, show_default=True)
@click.option("--phases", type=int, default=4, show_default=True)
@click.option("--events", type=int, default=5_000, show_default=True, help="Events per phase.")
def main(recommender: str, rate: float, phases: int, events: int) -> None:
    table = Table(title=f"{recommender}: {phases} phases of {events:,} events at {rate:g}/s on one stack")
    for column in ("phase", "p50 ms", "p99 ms", "max ms", "broker CPU s", "worker CPU s", "full GCs", "GC s"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        settings = Settings.load(
            overrides={
                "data_dir": str(data),
                "http_port": free_port(),
                "model_dir": str(data / "models"),
                "recommender": "cooccurrence" if recommender == BARE else recommender,
            }
        )
        if needs_training(recommender):
            from bench_fusion import save_untrained  # type: ignore[import-not-found]  # torch: only if needed

            save_untrained(Path(settings.model_dir), synthetic_catalog(ITEMS))
        with warm_stack(settings, recommender, rate) as (stack, relay):
            worker = stack.processes[BARE if recommender == BARE else "worker-0"].pid
            before = usage(stack, worker)
            for phase in range(phases):
                fresh, _ = run_phase(stack, relay, events, rate, seed=FIRST_SEED + phase)
                time.sleep(0.5)  # the last lists' CPU lands in this phase
                after = usage(stack, worker)
                p = fresh.percentiles_ms((50, 99, 100))
                spent = [b - a for a, b in zip(before, after, strict=True)]
                table.add_row(
                    str(phase + 1), *(f"{p[q]:.0f}" for q in ("p50", "p99", "p100")),
                    f"{spent[0]:.1f}", f"{spent[1]:.1f}", f"{spent[2]:.0f}", f"{spent[3]:.2f}",
                )  # fmt: skip
                before = after
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
