"""``streamrec train`` and ``streamrec evaluate``: the sequence model's offline life.

``train`` fits the transformer on an event log (each user's last event held out for early
stopping) and writes a new artifact version under ``--out`` (default: settings.model_dir),
which the worker picks up as the latest. ``evaluate`` runs the leave-one-out protocol of
notes/peers.md for every method and prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.table import Table

from infra.cli import main
from infra.config import Settings

# Columns of the evaluation table / keys of --json, in order.
METRICS = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "coverage@10", "gini@10", "tail_share@10")
JSON_METRICS = METRICS[:-1]
TABLE_WIDTH = 120


def _encoder(settings: Settings, text_model: str | None):  # noqa: ANN202 - lazy import keeps --help fast
    from models.text_encoder import TextEncoder

    return TextEncoder(text_model, cache_dir=Path(settings.data_dir) / "text_cache")


def _load(dataset: str | None, events_file: str | None, items_file: str | None) -> tuple[list, list]:
    from streams.sources import movielens_events, movielens_items, read_events, read_items

    if dataset:
        return movielens_events(dataset), movielens_items(dataset)
    if not (events_file and items_file):
        raise click.UsageError("give --dataset, or both --events and --items")
    return list(read_events(events_file)), list(read_items(items_file))


_data_options = [
    click.option("--dataset", type=click.Choice(["ml-100k"]), help="Built-in dataset."),
    click.option("--events", "events_file", type=click.Path(exists=True, dir_okay=False), help="Events JSONL/CSV."),
    click.option("--items", "items_file", type=click.Path(exists=True, dir_okay=False), help="Items JSONL/CSV."),
    click.option("--text-model", type=click.Path(exists=True, file_okay=False), help="Local HF text model folder."),
    click.option("--epochs", type=int, default=None, help="Max epochs (default: TrainConfig)."),
    click.option("--seed", type=int, default=None, help="Random seed (default: TrainConfig)."),
    click.option("--max-seconds", type=float, default=None, help="Training time cap (default: TrainConfig)."),
]


def _with_data_options(func):  # noqa: ANN001, ANN202
    for option in reversed(_data_options):
        func = option(func)
    return func


def _train_config(epochs: int | None, seed: int | None, max_seconds: float | None):  # noqa: ANN202
    from models.training import TrainConfig

    overrides = {"epochs": epochs, "seed": seed, "max_seconds": max_seconds}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return TrainConfig(**overrides)


@main.command()
@_with_data_options
@click.option("--out", type=click.Path(file_okay=False), help="Model directory (default: settings.model_dir).")
@click.pass_obj
def train(
    settings: Settings,
    dataset: str | None,
    events_file: str | None,
    items_file: str | None,
    text_model: str | None,
    epochs: int | None,
    seed: int | None,
    max_seconds: float | None,
    out: str | None,
) -> None:
    """Train the sequence transformer and write a new artifact version."""
    from models import artifact, training

    events, items = _load(dataset, events_file, items_file)
    encoder = _encoder(settings, text_model)
    seqs = training.user_sequences(events)
    train_seqs = {u: evs[:-1] for u, evs in seqs.items() if len(evs) >= 2}
    valid = {u: evs[-1] for u, evs in seqs.items() if len(evs) >= 2}
    config = _train_config(epochs, seed, max_seconds)
    result = training.train(train_seqs, valid, items, encoder.encode_items(items), {"window": settings.window}, config)
    path = artifact.save(
        out or settings.model_dir, result.model, result.vocab.ids, result.text, encoder.model_name, result.metrics
    )
    metrics = result.metrics
    click.echo(f"wrote {path}  (valid ndcg@10 {metrics['valid_ndcg@10']:.4f}, {metrics['train_seconds']} s)")


@main.command()
@_with_data_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--cold-start", is_flag=True, help="Also run the cold-start check (10% of items text-only).")
@click.pass_obj
def evaluate(
    settings: Settings,
    dataset: str | None,
    events_file: str | None,
    items_file: str | None,
    text_model: str | None,
    epochs: int | None,
    seed: int | None,
    max_seconds: float | None,
    as_json: bool,
    cold_start: bool,
) -> None:
    """Leave-one-out evaluation of every method (seen items masked, all items ranked)."""
    from models import evaluation

    events, items = _load(dataset, events_file, items_file)
    encoder, config = _encoder(settings, text_model), _train_config(epochs, seed, max_seconds)
    results = evaluation.evaluate(events, items, encoder, config)
    cold = evaluation.cold_start(events, items, encoder, config) if cold_start else None
    if as_json:
        out: dict = {"methods": {name: {k: m[k] for k in JSON_METRICS} for name, m in results.items()}}
        if cold is not None:
            out["cold_start"] = cold
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    # Piped output gets 80 columns by default, which would truncate the figures.
    console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
    table = Table(title=f"leave-one-out, all items ranked, seen items masked ({len(events):,} events)")
    table.add_column("method")
    for name in METRICS:
        table.add_column(name, justify="right")
    for name, metrics in results.items():
        table.add_row(name, *(f"{metrics[k]:.4f}" for k in METRICS))
    console.print(table)
    if cold is not None:
        users = int(cold["transformer"]["targets"])
        cold_table = Table(title=f"cold start: test targets never seen in training ({users} users)")
        for column in ("method", "hr@10", "ndcg@10"):
            cold_table.add_column(column, justify="right")
        for name, metrics in cold.items():
            cold_table.add_row(name, f"{metrics['hr@10']:.4f}", f"{metrics['ndcg@10']:.4f}")
        console.print(cold_table)
