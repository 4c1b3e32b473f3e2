"""The ``streamrec`` command: one entry point for every process and tool.

Subcommands live in `streamrec.infra.commands` and are imported only when run (or
listed by ``--help``); their modules keep heavy imports (torch, Faust) inside the
command bodies, so ``streamrec --help`` stays fast.
"""

from __future__ import annotations

import importlib

import click

from streamrec import __version__
from streamrec.settings import Settings

# Command name -> "module:attribute" of its click command.
COMMANDS = {
    "items": "pipeline:items",
    "worker": "pipeline:worker",
    "serve": "pipeline:serve",
    "replay": "pipeline:replay_command",
    "up": "pipeline:up",
    "demo": "pipeline:demo",
    "train": "models:train",
    "refit": "models:refit",
    "evaluate": "models:evaluate",
    "backtest": "backtest:backtest_command",
    "topics": "topics:topics",
    "schema": "schema:schema",
    "trainer": "trainer:trainer",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, _, attribute = COMMANDS[name].partition(":")
        command = getattr(importlib.import_module(f"streamrec.infra.commands.{module}"), attribute)
        assert isinstance(command, click.Command), COMMANDS[name]
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="streamrec")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML settings file.")
@click.option("--broker", help="embedded, or kafka://host:port of an external Kafka.")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, broker: str | None) -> None:
    """streamrec: a streaming real-time recommender."""
    ctx.obj = Settings.load(file=config_file, overrides={"broker": broker})


@main.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print the effective settings (defaults < file < STREAMREC_* env < flags); secrets hidden."""
    for name, value in settings.as_env(hide_secrets=True).items():
        click.echo(f"{name}={value}")
