"""What a trainer round costs the pipeline: its CPU time, and the worker's freshness and
throughput while a round runs in another process vs with no round (one worker serving the
transformer, synthetic Zipf traffic as in `bench_pipeline.py`, on the same machine).

A first model is trained on a synthetic log (a short full retrain); then two phases replay
the same number of events at the same rate, the second while a warm-start round
(`models.trainer.run_round`, what `streamrec trainer run` does) runs in a child process.

    python bench/bench_trainer_cost.py --events 6000 --rate 200 --history 20000
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import tempfile
import time
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

import click
from bench_pipeline import ITEMS, USERS, Relay, follow_lists, run_phase  # type: ignore[import-not-found]  # a script beside this one
from rich.console import Console
from rich.table import Table

from streamrec.infra.broker import free_port
from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.freshness import Freshness
from streamrec.streams.replay import produce_items
from streamrec.streams.sources import synthetic_catalog, synthetic_events

# The first model only needs to be servable: a few epochs of a full retrain.
FIRST_MODEL_EPOCHS = 3
# The bench's log for training (distinct seed from the replayed phases).
TRAIN_SEED = 9


def _trainer_config(epochs: int | None = None):
    from streamrec.models import continual
    from streamrec.models.trainer import TrainerConfig

    full = dataclasses.replace(continual.FULL, epochs=epochs or continual.FULL.epochs)
    return TrainerConfig(full=full, refit_fusion=False)


def _history(n: int) -> list:
    return list(synthetic_events(n, USERS, ITEMS, seed=TRAIN_SEED))


def first_model(model_dir: Path, history: int) -> None:
    from streamrec.models.text_encoder import TextEncoder
    from streamrec.models.trainer import run_round, save

    encoder = TextEncoder()
    decision = run_round(
        _history(history), synthetic_catalog(ITEMS), None, encoder, _trainer_config(FIRST_MODEL_EPOCHS)
    )
    save(decision, model_dir, encoder)


def one_round(model_dir: str, history: int, niceness: int, results: mp.Queue, go: MpEvent) -> None:
    """A warm-start round against the live model, as the trainer process runs it (at its
    lowered priority, `yield_to_workers`); reports its times.

    Start-up (imports, the text encoder, the history) happens before ``go`` is set, between
    the phases: `streamrec trainer run` is a long-lived process that pays it once, not per round.
    """
    from streamrec.models.artifact import load_latest
    from streamrec.models.text_encoder import TextEncoder
    from streamrec.models.trainer import run_round, yield_to_workers

    yield_to_workers(niceness)
    encoder, events, items = TextEncoder(), _history(history), synthetic_catalog(ITEMS)
    encoder.encode_items(items)  # cached, as in a running trainer
    results.put("ready")
    go.wait()
    started, cpu = time.monotonic(), time.process_time()
    decision = run_round(events, items, load_latest(model_dir), encoder, _trainer_config())
    results.put((time.monotonic() - started, time.process_time() - cpu, decision.kind, decision.verdict.reason))


def phase_row(name: str, fresh: Freshness, wall: float, n: int) -> dict:
    p = fresh.percentiles_ms()
    return {"phase": name, "p50_ms": p["p50"], "p99_ms": p["p99"], "events_per_s": n / wall, "wall_s": wall}


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.option("--events", type=int, default=6000, show_default=True, help="Events replayed per phase.")
@click.option("--rate", type=float, default=200.0, show_default=True, help="Replay rate, events/s.")
@click.option("--history", type=int, default=20_000, show_default=True, help="Events the round trains on.")
@click.option("--niceness", type=int, help="The round's priority drop (default: the trainer's, NICENESS).")
def main(events: int, rate: float, history: int, niceness: int | None) -> None:
    from streamrec.models.trainer import NICENESS

    niceness = NICENESS if niceness is None else niceness
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "models"
        first_model(model_dir, history)
        overrides = {"data_dir": f"{tmp}/data", "http_port": free_port(), "recommender": "transformer"}
        settings = Settings.load(overrides=overrides | {"model_dir": str(model_dir)})
        with Stack(settings) as stack:
            produce_items(synthetic_catalog(ITEMS), stack.settings)
            time.sleep(1.0)
            relay = Relay()  # one list reader for every phase (`bench_pipeline.Relay`)
            reader = follow_lists(stack.settings)(relay)
            run_phase(stack, relay, 500, rate, seed=0)  # warm-up: caches, connections, model
            spawn = mp.get_context("spawn")
            results, go = spawn.Queue(), spawn.Event()
            child = spawn.Process(target=one_round, args=(str(model_dir), history, niceness, results, go))
            child.start()
            results.get()  # the trainer process is up and idle in every phase: only the round differs
            rows = [phase_row("no round, before", *run_phase(stack, relay, events, rate, seed=1), events)]
            go.set()
            rows.append(phase_row("round running", *run_phase(stack, relay, events, rate, seed=2), events))
            round_s, round_cpu_s, kind, reason = results.get()
            rows.append(phase_row("no round, after", *run_phase(stack, relay, events, rate, seed=3), events))
            child.join()
            reader.stop()
    print_rows(rows, rate, events)
    print(
        f"round ({kind}, history {history}, nice {niceness}): {round_s:.1f} s wall, {round_cpu_s:.1f} s CPU; {reason}"
    )


def print_rows(rows: list[dict], rate: float, events: int) -> None:
    """The phases, and the round's p99 over the mean p99 of the phases around it.

    Before and after bracket the round (an A-B-A design): consecutive phases of one stack
    differ by themselves (the second of two quiet phases measured 2.4× the first's p99),
    so one phase before is no baseline.
    """
    table = Table(title=f"trainer cost: 1 worker (transformer), {rate:g} ev/s, {events} events per phase")
    for column in ("phase", "p50 ms", "p99 ms", "lists ev/s", "wall s"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["phase"], *(f"{row[k]:.1f}" for k in ("p50_ms", "p99_ms", "events_per_s", "wall_s")))
    Console().print(table)
    quiet = (rows[0]["p99_ms"] + rows[2]["p99_ms"]) / 2
    print(f"freshness p99 with a round / without (mean of before and after): {rows[1]['p99_ms'] / quiet:.2f}x")


if __name__ == "__main__":
    main()
