"""Learning-log memory and restart cost as the stream grows, for one worker's model host.

    python bench/bench_learning.py [--recommender fusion+tail] [--steps 20000,40000,80000,160000]

Synthetic Zipf events (`streams.sources.synthetic_events`, 2,000 items, 5,000 users) go
through ``events.learning`` records (256 events each, as a worker's micro-batches) into
a `ModelHost`, in process, no broker. At each step it prints what stays in memory (log
entries held, the process's peak RSS), the checkpoint's size and the time to save it,
and a restart's cost: a new host loads the checkpoint (taken 10% of the events before
the step) and reads the whole log, skipping what the checkpoint holds, against a new
host learning the whole log, as a restart without a checkpoint does (or, before
checkpoints, every hot reload). Both include building the model. Transformer-based recommenders get an untrained artifact (same cost).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from streamrec.models.registry import RecommenderOptions, make_recommender, needs_training
from streamrec.settings import Settings
from streamrec.streams import checkpoint
from streamrec.streams.broadcast import Record
from streamrec.streams.catalog import Catalog
from streamrec.streams.contracts import encode_item
from streamrec.streams.learning import Entry, LearningLog, encode_batch
from streamrec.streams.model_host import ModelHost
from streamrec.streams.sources import synthetic_catalog, synthetic_events
from streamrec.types import Interaction

ITEMS, USERS, BATCH = 2000, 5000, 256
TAIL_SHARE = 0.1  # the part of the log a restart from the checkpoint still reads


def learning_records(n_events: int) -> list[Record]:
    """``n_events`` applied events as ``events.learning`` records of `BATCH` entries."""
    windows: dict[str, list[Interaction]] = {}
    entries: list[Entry] = []
    for offset, event in enumerate(synthetic_events(n_events, USERS, ITEMS, seed=1)):
        window = windows.setdefault(event.user_id, [])
        interaction = Interaction(event.item_id, event.event_type, event.ts)
        entries.append((offset, interaction, window[-5:]))
        window.append(interaction)
    batches = [encode_batch(0, entries[s : s + BATCH]) for s in range(0, len(entries), BATCH)]
    return [Record(b"0", value, 0, 0, n) for n, value in enumerate(batches)]


def new_host(settings: Settings, restore: bool = False) -> ModelHost:
    """A host with a fresh recommender that has read the catalog (and, if ``restore``, the checkpoint)."""
    model = make_recommender(settings.recommender, RecommenderOptions.of(settings))
    position = checkpoint.load(settings.data_dir, settings.recommender, model) if restore else None
    catalog = Catalog()
    catalog.on_records([Record(None, encode_item(i), 0, 0, n) for n, i in enumerate(synthetic_catalog(ITEMS))])
    return ModelHost(settings, model, catalog, LearningLog(resume=position), position)


def learned(host: ModelHost, records: list[Record]) -> float:
    """Seconds to hand ``records`` to ``host``'s model."""
    started = time.perf_counter()
    for n in range(0, len(records), 16):
        host.learning.on_records(records[n : n + 16])
        host.follow()
    return time.perf_counter() - started


def restarted(settings: Settings, restore: bool, records: list[Record]) -> float:
    """Seconds for a new host (with the checkpoint if ``restore``) to learn ``records``."""
    started = time.perf_counter()
    host = new_host(settings, restore)
    return time.perf_counter() - started + learned(host, records)


@click.command()
@click.option("--recommender", default="fusion+tail", show_default=True)
@click.option("--steps", default="20000,40000,80000,160000", show_default=True, help="Events learned, cumulative.")
def main(recommender: str, steps: str) -> None:
    sizes = [int(s) for s in steps.split(",")]
    records = learning_records(max(sizes))
    table = Table(title=f"learning memory and restart, {recommender} ({ITEMS:,} items, {USERS:,} users)")
    for column in ("events learned", "log entries held", "peak RSS MB", "checkpoint KB", "save ms",
                   "restart: load + tail s", "restart: whole log s"):  # fmt: skip
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(overrides={"data_dir": tmp, "model_dir": f"{tmp}/models", "recommender": recommender})
        if needs_training(recommender):
            from bench_fusion import save_untrained  # type: ignore[import-not-found]  # bench/ is on sys.path

            save_untrained(Path(settings.model_dir), synthetic_catalog(ITEMS))
        host, done = new_host(settings), 0
        for size in sizes:
            upto = -(-size // BATCH)
            checkpointed = int(upto * (1 - TAIL_SHARE))
            learned(host, records[done:checkpointed])
            started = time.perf_counter()
            path = checkpoint.save(tmp, recommender, host.recommender, host.position)
            save_ms = 1e3 * (time.perf_counter() - started)
            learned(host, records[checkpointed:upto])
            done = upto
            held = len(host.learning._log)  # entries kept in memory (a bench may look inside)
            restart, whole = restarted(settings, True, records[:upto]), restarted(settings, False, records[:upto])
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            table.add_row(f"{size:,}", f"{held:,}", f"{rss_mb:,.0f}", f"{path.stat().st_size / 1024:,.0f}",
                          f"{save_ms:,.0f}", f"{restart:.2f}", f"{whole:.2f}")  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
