"""``streamrec backtest``: replay a log through the real pipeline and score it prequentially."""

from __future__ import annotations

import itertools

import click
from rich.table import Table

from streamrec.infra import backtest, report
from streamrec.infra.commands.experiments import check_experiment, experiments_table
from streamrec.infra.commands.options import RECOMMENDERS_HELP, check_recommenders, log_source, require_pinned_versions
from streamrec.infra.retraining import SUFFIX
from streamrec.models.experiments import parse_experiment
from streamrec.settings import Settings
from streamrec.streams.sources import DATASETS, LogSource

# Share of events left for scoring when --train-until is not given.
SCORED_SHARE = 0.2
SUMMARY_COLUMNS = (
    "hr@10",
    "ndcg@10",
    "mrr@10",
    "coverage@10",
    "gini@10",
    "tail_share@10",
    "latency_p50_ms",
    "latency_p99_ms",
    "events",
    "wall_s",
)


@click.command("backtest")
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Event log (JSONL or CSV), in time order.",
)
@click.option(
    "--items", "items_file", type=click.Path(exists=True, dir_okay=False), help="Item catalog (JSONL or CSV)."
)
@click.option("--dataset", type=click.Choice(DATASETS), help="A built-in dataset instead of --events/--items.")
@click.option(
    "--train-until", type=float, help="Epoch s: events before it warm up/train, the rest are scored. Default: last 20%."
)
@click.option(
    "--recommenders",
    default="popularity,cooccurrence",
    show_default=True,
    callback=check_recommenders,
    help=f"Comma list of {RECOMMENDERS_HELP}.",
)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False),
    help="Transformer artifact dir (from `streamrec train`); default: train one on the warm-up part.",
)
@click.option("--rate", type=float, help="Cap on the scored replay rate, events/s (default: as fast as gating allows).")
@click.option(
    "--in-flight",
    default=backtest.IN_FLIGHT,
    show_default=True,
    help="Scored events awaiting their lists at once (1 = lockstep).",
)
@click.option(
    "--lookahead",
    default=backtest.LOOKAHEAD,
    show_default=True,
    help="Events looked ahead past one held back (bounds reordering across users).",
)
@click.option("--limit", type=int, help="Only the first N events of the log.")
@click.option("--seed", default=2020, show_default=True, help="Recorded in the report; seeds training.")
@click.option(
    "--train-epochs",
    type=int,
    hidden=True,
    help="Test hook: cap the warm-up training's epochs (default: early stopping on validation alone).",
)
@click.option(
    "--retrain-every",
    type=click.IntRange(min=1),
    help="Also run each trained recommender as <name>+retrain: a trainer round every N scored events.",
)
@click.option(
    "--experiment",
    default="",
    callback=check_experiment,
    help="Also replay an A/B experiment, all arms at once: name=arm:recommender[:share],... (first arm = control).",
)
@click.option("--degrade-round", type=int, default=0, hidden=True, help="Test hook: degrade this round's candidate.")
@click.option("--out", "out_dir", default="backtest-report", show_default=True, type=click.Path(file_okay=False))
@click.pass_obj
def backtest_command(
    settings: Settings,
    events_file: str | None,
    items_file: str | None,
    dataset: str | None,
    train_until: float | None,
    recommenders: tuple[str, ...],
    model_dir: str | None,
    rate: float | None,
    in_flight: int,
    lookahead: int,
    limit: int | None,
    seed: int,
    train_epochs: int | None,
    retrain_every: int | None,
    degrade_round: int,
    experiment: str,
    out_dir: str,
) -> None:
    """Backtest recommenders by replaying a log through the running pipeline.

    For each recommender a fresh stack (embedded broker + worker; or --broker) is
    started, the catalog announced, events before --train-until replayed as warm-up,
    and the rest replayed in time order with per-user gating: a user's next event is
    produced only after the list including their previous one was published. Each
    scored event is ranked against the last list its user had before it was produced.

    \b
    Inputs (streamed, never loaded whole):
      events JSONL: {"user_id", "item_id", "event_type": view|click|purchase, "ts": epoch s}
      events CSV:   header user_id,item_id,event_type,ts[,event_id]
      items JSONL:  {"item_id", "title", "description"?, "category"? ("A, B"), "available"?}
      items CSV:    header item_id,title[,description,category,available]

    With --retrain-every N, each recommender that serves a model artifact (transformer,
    fusion) also runs as <name>+retrain: the continual trainer's rounds inside the replay,
    on the events already replayed, every N scored events (docs/trainer.md).

    Writes OUT/report.json and OUT/report.html (self-contained). See docs/backtest.md.
    """
    if not dataset and not (events_file and items_file):
        raise click.UsageError("give --events FILE and --items FILE (or --dataset)")
    arms = [a.recommender for a in parse_experiment(experiment).arms] if experiment else []
    require_pinned_versions([*recommenders, *arms], model_dir)
    source = log_source(dataset, events_file, items_file, limit)
    cut = train_until if train_until is not None else _scored_tail_start(source)
    if retrain_every:
        recommenders = with_retraining(recommenders)
    config = backtest.BacktestConfig(
        recommenders,
        cut,
        rate,
        in_flight,
        lookahead,
        seed,
        model_dir,
        source.name,
        train_epochs,
        retrain_every or 0,
        degrade_round,
        experiment,
    )
    result = backtest.run_backtest(settings, source.events, list(source.items()), config)
    json_path, html_path = report.write(result, out_dir)
    backtest.console.print(summary_table(result["recommenders"]))
    for name, summary in result.get("experiments", {}).items():
        backtest.console.print(experiments_table(name, summary))
    click.echo(f"wrote {json_path} and {html_path}")


def with_retraining(recommenders: tuple[str, ...]) -> tuple[str, ...]:
    """Each artifact recommender followed by its ``+retrain`` twin.

    >>> with_retraining(("transformer", "cooccurrence"))
    ('transformer', 'transformer+retrain', 'cooccurrence')
    """
    from streamrec.models.registry import needs_training

    return tuple(n for name in recommenders for n in (name, f"{name}{SUFFIX}")[: 1 + needs_training(name)])


def _scored_tail_start(source: LogSource) -> float:
    """The ts of the first event of the last `SCORED_SHARE` (two streaming passes)."""
    total = sum(1 for _ in source.events())
    if total == 0:
        raise click.UsageError("the event log is empty")
    index = int(total * (1 - SCORED_SHARE))
    return next(itertools.islice(source.events(), index, None)).ts


def summary_table(rows: dict[str, dict[str, float]]) -> Table:
    table = Table(title="backtest")
    table.add_column("recommender")
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, *(report.fmt(row.get(c, float("nan")), c) for c in SUMMARY_COLUMNS))
    return table
