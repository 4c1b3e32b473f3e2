"""``streamrec train``, ``refit`` and ``evaluate``: the models' offline life.

``train`` fits the transformer on an event log (each user's last event held out for early
stopping) and writes a new model version under ``--out`` (default: settings.model_dir),
which the worker picks up as the latest, with the fusion ranker's ``fusion.json`` fitted
for it on the held-out events inside it (``--no-fusion`` skips that). ``refit`` fits the
fusion ranker again for the newest version (e.g. on a newer log) and publishes a new
version with the same transformer. ``evaluate`` runs the leave-one-out protocol of
docs/peers.md for every method and prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from streamrec.settings import Settings

if TYPE_CHECKING:
    from streamrec.models.artifact import Artifact
    from streamrec.models.fusion import FusionWeights
    from streamrec.models.text_encoder import TextEncoder
    from streamrec.types import Event, Item

# Columns of the evaluation table / keys of --json, in order.
METRICS = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "coverage@10", "gini@10", "tail_share@10")
JSON_METRICS = METRICS[:-1]
COLD_METRICS = ("hr@10", "ndcg@10", "warm_hr@10", "warm_ndcg@10", "cold_share@10")
# Longest the catalog read-back may take.
READ_TIMEOUT_S = 60.0
TABLE_WIDTH = 120


def _encoder(settings: Settings, text_model: str | None):
    from streamrec.models.text_encoder import TextEncoder

    return TextEncoder(text_model, cache_dir=Path(settings.data_dir) / "text_cache")


@dataclass(frozen=True)
class DataOptions:
    """Where the events and items come from, and how to train on them."""

    dataset: str | None
    events_file: str | None
    items_file: str | None
    from_broker: bool
    text_model: str | None
    epochs: int | None
    seed: int | None
    max_seconds: float | None

    def load(self, settings: Settings) -> tuple[list, list]:
        from streamrec.streams.sources import movielens_events, movielens_items, read_events, read_items

        if self.dataset:
            return movielens_events(self.dataset), movielens_items(self.dataset)
        if self.from_broker:
            return _broker_log(settings)
        if not (self.events_file and self.items_file):
            raise click.UsageError("give --dataset, --from-broker, or both --events and --items")
        return list(read_events(self.events_file)), list(read_items(self.items_file))

    def train_config(self):
        from streamrec.models.training import TrainConfig

        overrides: dict[str, Any] = {"epochs": self.epochs, "seed": self.seed, "max_seconds": self.max_seconds}
        return TrainConfig(**{k: v for k, v in overrides.items() if v is not None})


def _broker_log(settings: Settings) -> tuple[list, list]:
    """The feedback loop's input: everything on the events and items topics so far."""
    from streamrec.infra.commands.pipeline import connected
    from streamrec.streams.broadcast import read_all
    from streamrec.streams.catalog import Catalog
    from streamrec.streams.sources import topic_events

    settings = connected(settings)
    catalog = Catalog()
    catalog.on_records(read_all(settings.bootstrap_servers, settings.topic_items, READ_TIMEOUT_S, name="training"))
    catalog.refresh()
    return topic_events(settings.bootstrap_servers, settings.topic_events), list(catalog.items.values())


_data_options = [
    click.option("--dataset", type=click.Choice(["ml-100k"]), help="Built-in dataset."),
    click.option("--events", "events_file", type=click.Path(exists=True, dir_okay=False), help="Events JSONL/CSV."),
    click.option("--items", "items_file", type=click.Path(exists=True, dir_okay=False), help="Items JSONL/CSV."),
    click.option("--from-broker", is_flag=True, help="Read the events and items topics (the feedback loop)."),
]
_training_options = [
    click.option("--text-model", type=click.Path(exists=True, file_okay=False), help="Local HF text model folder."),
    click.option("--epochs", type=int, default=None, help="Max epochs (default: TrainConfig)."),
    click.option("--seed", type=int, default=None, help="Random seed (default: TrainConfig)."),
    click.option("--max-seconds", type=float, default=None, help="Training time cap (default: TrainConfig)."),
]


def _with_log_options(func, options: tuple = ()):
    """Add the data options (and ``options``) to a command and hand them to it as one
    `DataOptions` ``data`` (fields without an option: None)."""
    names = [f.name for f in fields(DataOptions)]

    @functools.wraps(func)
    def command(*args, **kwargs):
        return func(*args, data=DataOptions(**{n: kwargs.pop(n, None) for n in names}), **kwargs)

    for option in reversed([*_data_options, *options]):
        command = option(command)
    return command


def _with_data_options(func):
    """`_with_log_options` plus the training options (text model, epochs, seed, time cap)."""
    return _with_log_options(func, tuple(_training_options))


@click.command()
@_with_data_options
@click.option("--out", type=click.Path(file_okay=False), help="Model directory (default: settings.model_dir).")
@click.option("--fusion/--no-fusion", default=True, show_default=True, help="Also fit the fusion ranker's fusion.json.")
@click.pass_obj
def train(settings: Settings, data: DataOptions, out: str | None, fusion: bool) -> None:
    """Train the sequence transformer and write a new model version, with the fusion
    ranker's weights fitted for it inside (fusion.json, on the same log).

    Running workers pick the new version up within seconds (hot reload).
    """
    from streamrec.models import artifact, holdout, training
    from streamrec.models.fusion import WEIGHTS_FILE

    events, items = data.load(settings)
    encoder = _encoder(settings, data.text_model)
    train_seqs, valid = holdout.leave_one_out(holdout.user_sequences(events), held=1)
    config = data.train_config()
    result = training.train(train_seqs, valid, items, encoder.encode_items(items), {"window": settings.window}, config)
    trained = artifact.in_memory(result.model, result.vocab.ids, result.text, encoder.model_name, result.metrics)
    weights = _fit_fusion(settings, trained, encoder, events, items) if fusion else None
    path = artifact.publish(out or settings.model_dir, trained, {WEIGHTS_FILE: weights.dumps()} if weights else {})
    metrics = result.metrics
    click.echo(f"wrote {path}  (valid ndcg@10 {metrics['valid_ndcg@10']:.4f}, {metrics['train_seconds']} s)")
    if weights is not None:
        click.echo(f"  with {WEIGHTS_FILE} (fusion ranker, fitted on {_fitted_on(weights.meta)})")


@click.command()
@_with_log_options
@click.option("--model-dir", type=click.Path(file_okay=False), help="Model directory (default: settings.model_dir).")
@click.pass_obj
def refit(settings: Settings, data: DataOptions, model_dir: str | None) -> None:
    """Fit the fusion ranker again for the newest model version, on the given log, and
    publish the weights as a new version with the same transformer (hard-linked).

    Running workers pick the new version up within seconds (hot reload).
    """
    from streamrec.models.fusion import NothingToFit
    from streamrec.models.fusion import refit as refit_version
    from streamrec.models.fusion.weights import FusionWeights
    from streamrec.types import parse_event_weights

    events, items = data.load(settings)
    try:
        path = refit_version(
            model_dir or settings.model_dir, events, items, parse_event_weights(settings.event_weights)
        )
    except (FileNotFoundError, NothingToFit) as exc:
        raise click.ClickException(str(exc)) from exc
    weights = FusionWeights.load(path)
    assert weights is not None
    click.echo(f"wrote {path}  (fusion ranker, fitted on {_fitted_on(weights.meta)})")


def _fitted_on(meta: dict) -> str:
    return f"{meta['with_target']} of {meta['positions']} positions"


def _fit_fusion(
    settings: Settings, trained: Artifact, encoder: TextEncoder, events: list[Event], items: list[Item]
) -> FusionWeights | None:
    """The fusion ranker's weights for the transformer just trained, on the same log (None
    when the log is too short to fit them: the artifact is still worth writing)."""
    from streamrec.models.fusion import WEIGHTS_FILE, NothingToFit, fit_for
    from streamrec.models.transformer import TransformerRecommender
    from streamrec.types import parse_event_weights

    transformer = TransformerRecommender(trained, encoder)
    try:
        return fit_for(transformer, events, items, parse_event_weights(settings.event_weights))
    except NothingToFit as exc:
        click.echo(f"{WEIGHTS_FILE} not written: {exc}", err=True)
        return None


@click.command()
@_with_data_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--cold-start", is_flag=True, help="Also run the cold-start check (10% of items text-only).")
@click.pass_obj
def evaluate(settings: Settings, data: DataOptions, as_json: bool, cold_start: bool) -> None:
    """Leave-one-out evaluation of every method (seen items masked, all items ranked)."""
    from streamrec.models import evaluation

    events, items = data.load(settings)
    encoder, config = _encoder(settings, data.text_model), data.train_config()
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
    console.print(
        _table(f"leave-one-out, all items ranked, seen items masked ({len(events):,} events)", results, METRICS)
    )
    if cold is not None:
        users = int(cold["popularity"]["targets"])
        console.print(
            _table(f"cold start: 10% of items text-only; {users} test targets among them", cold, COLD_METRICS)
        )


def _table(title: str, results: dict[str, dict[str, float]], columns: tuple[str, ...]) -> Table:
    """One row per method, one column per metric."""
    table = Table(title=title)
    table.add_column("method")
    for name in columns:
        table.add_column(name, justify="right")
    for name, metrics in results.items():
        table.add_row(name, *(f"{metrics[k]:.4f}" for k in columns))
    return table
