"""The ``streamrec`` command: one entry point for every process and tool.

Each command module registers itself on the `main` group; this module only assembles them.
"""

from __future__ import annotations

import click

from infra.config import Settings


@click.group()
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML settings file.")
@click.option("--broker", help="embedded, or kafka://host:port of an external Kafka.")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, broker: str | None) -> None:
    """streamrec: a streaming real-time recommender."""
    ctx.obj = Settings.load(file=config_file, overrides={"broker": broker})


@main.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print the effective settings (defaults < file < STREAMREC_* env < flags)."""
    for name, value in settings.as_env().items():
        click.echo(f"{name}={value}")


# Command modules register themselves on `main`.
from infra.commands import pipeline  # noqa: E402,F401  (items, worker, serve, replay, demo, up)
from infra.commands import backtest  # noqa: E402,F401  (backtest)
from infra.commands import models  # noqa: E402,F401  (train, evaluate)
from infra.commands import topics  # noqa: E402,F401  (topics)
