"""Commands that run or feed the pipeline: items, worker, serve, replay, up, demo."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from streamrec.infra.broker import SERVER_STATE
from streamrec.infra.commands.options import (
    connected,
    dataset_option,
    log_source,
    recommender_option,
    require_known_models,
    require_servable,
)
from streamrec.infra.stack import Stack, require_free_port, stopping_on_signals
from streamrec.settings import Settings
from streamrec.streams.replay import Pacer, UndeliveredError, produce_items, replay

# A demo-sized training budget: a usable model in a couple of minutes (full: `streamrec train`).
DEMO_TRAIN_S = 120.0

train_seconds_option = click.option(
    "--train-seconds",
    type=float,
    default=DEMO_TRAIN_S,
    show_default=True,
    help="Training budget on ml-100k when the recommender needs a model and none exists yet (0: do not train).",
)


def ensure_model(ctx: click.Context, settings: Settings, train_seconds: float) -> None:
    """Train the transformer on ml-100k within ``train_seconds`` if the recommender needs a model
    and ``model_dir`` holds none: search, similar items and lists work on the first start."""
    from streamrec.models.registry import uses_artifacts
    from streamrec.models.versions import latest_version

    if train_seconds <= 0 or not uses_artifacts(settings.recommender) or latest_version(settings.model_dir):
        return
    from streamrec.infra.commands.models import train

    click.echo(
        f"no model under {settings.model_dir}: training the transformer on ml-100k for up to {train_seconds:.0f} s"
    )
    ctx.invoke(train, dataset="ml-100k", max_seconds=train_seconds)


@click.group()
def items() -> None:
    """The item catalog (the 'items' topic)."""


@items.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@dataset_option
@click.pass_obj
def items_load(settings: Settings, file: str | None, dataset: str | None) -> None:
    """Announce items from FILE (JSONL/CSV) or a dataset on the items topic."""
    settings = connected(settings)  # first: a dead broker is reported before the log is read
    n = produce_items(log_source(dataset, items_file=file).items(), settings)
    click.echo(f"announced {n} items on {settings.topic_items}")


@click.command()
@click.option("--name", default="worker-0", show_default=True, help="Worker name (its own state dir).")
@recommender_option
@click.option("--loglevel", default="info", show_default=True)
@click.pass_obj
def worker(settings: Settings, name: str, recommender: str | None, loglevel: str) -> None:
    """Run one stream worker (Faust + RocksDB) until stopped."""
    from streamrec.streams.worker import run

    settings = connected(require_servable(settings.with_(recommender=recommender or settings.recommender)))
    run(settings, name, loglevel)


@click.command()
@click.option("--host", help="Address to listen on (default: settings.http_host, loopback).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default: settings.http_port).")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None) -> None:
    """Run the HTTP server: latest lists per user, event intake, health, metrics."""
    import uvicorn

    from streamrec.serving.app import create_app

    given = {"http_host": host, "http_port": port}
    settings = connected(require_known_models(settings)).with_(
        **{name: value for name, value in given.items() if value is not None}
    )
    settings = settings.with_(lists_dir=settings.lists_dir or str(Path(settings.data_dir) / SERVER_STATE / "lists"))
    # httptools + uvloop and no access log: 2-3x the requests/s of the pure-Python defaults.
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )


@click.command("replay")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@dataset_option
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
@click.option("--speedup", type=float, help="Follow the log's timestamps, this many times faster.")
@click.option("--limit", type=int, help="Only the first N events.")
@click.pass_obj
def replay_command(
    settings: Settings,
    file: str | None,
    dataset: str | None,
    rate: float | None,
    speedup: float | None,
    limit: int | None,
) -> None:
    """Produce a log's events (JSONL/CSV or a dataset) to the events topic, in order.

    JSONL lines follow the events contract; CSV has the header
    'user_id,item_id,event_type,ts[,event_id]'.
    """
    settings = connected(settings)  # first: a dead broker is reported before the log is read
    events = log_source(dataset, events_file=file, limit=limit).events()
    try:
        stats = replay(events, settings, Pacer(rate, speedup), total=limit)
    except UndeliveredError as exc:  # the broker went away for longer than the delivery timeout
        raise click.ClickException(f"replay incomplete: {exc}") from None
    click.echo(f"replayed {stats.events} events in {stats.wall_s:.1f} s ({stats.rate:,.0f} ev/s)")


@click.command()
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True)
@recommender_option
@train_seconds_option
@click.option("--no-trainer", is_flag=True, help="Do not start the continual trainer (also: trainer_enabled=0).")
@click.pass_context
def up(ctx: click.Context, workers: int, recommender: str | None, train_seconds: float, no_trainer: bool) -> None:
    """Start broker, workers, HTTP server and continual trainer; keep them running until Ctrl-C or SIGTERM."""
    settings = require_servable(ctx.obj.with_(recommender=recommender or ctx.obj.recommender))
    require_free_port(settings.http_host, settings.http_port)
    ensure_model(ctx, settings, train_seconds)
    logging.basicConfig(level=logging.INFO)
    trainer = bool(settings.trainer_enabled) and not no_trainer
    with (
        stopping_on_signals(lambda: click.echo("stopped")),
        Stack(settings, workers=workers, serve=True, trainer=trainer) as stack,
    ):
        for line in [*stack.urls(), f"logs: {stack.log_dir}"]:
            click.echo(line)
        click.echo("feed it: streamrec items load --dataset ml-100k && streamrec replay --dataset ml-100k --rate 500")
        while True:
            time.sleep(1)


@click.command()
@click.option("--rate", type=float, default=1000.0, show_default=True, help="Replay rate in events/s.")
@click.option("--limit", type=int, help="Only the first N events of ml-100k.")
@recommender_option
@train_seconds_option
@click.pass_context
def demo(ctx: click.Context, rate: float, limit: int | None, recommender: str | None, train_seconds: float) -> None:
    """Replay MovieLens-100K through the whole stack and print what came out."""
    from streamrec.infra.demo import run_demo

    settings = require_servable(ctx.obj.with_(recommender=recommender or ctx.obj.recommender))
    require_free_port(settings.http_host, settings.http_port)
    ensure_model(ctx, settings, train_seconds)
    with stopping_on_signals(lambda: click.echo("stopped")):
        run_demo(settings, rate, limit)
