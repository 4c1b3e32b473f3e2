"""The ``streamrec`` command: one entry point for every process and tool.

Subcommands live in `streamrec.infra.commands` and are imported only when run (or
listed by ``--help``); their modules keep heavy imports (torch, Faust) inside the
command bodies, so ``streamrec --help`` stays fast.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import click
from click.utils import make_default_short_help

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
    "experiments": "experiments:experiments",
}
# click's default width for a command's one-line help.
SHORT_HELP_LIMIT = 45


def short_help(name: str, limit: int = SHORT_HELP_LIMIT) -> str:
    """A lazy command's one-line help, read from its function's docstring in the source
    (`ast`), so listing the commands imports none of them (numpy, pydantic, Kafka clients).

    >>> short_help("items")
    "The item catalog (the 'items' topic)."
    """
    module, _, attribute = COMMANDS[name].partition(":")
    tree = ast.parse((Path(__file__).parent / "commands" / f"{module}.py").read_text(encoding="utf-8"))
    function = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == attribute
    )
    return make_default_short_help(ast.get_docstring(function) or "", limit)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, without importing a lazy command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))  # as click.Group.format_commands
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, short_help(name, limit)))
            elif (command := super().get_command(ctx, name)) is not None:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
    try:
        ctx.obj = Settings.load(file=config_file, overrides={"broker": broker})
    except ValueError as exc:  # a bad file, value or name (tomllib's decode error is one too)
        raise click.ClickException(f"settings: {exc}") from None


@main.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print the effective settings (defaults < file < STREAMREC_* env < flags); secrets hidden."""
    for name, value in settings.as_env(hide_secrets=True).items():
        click.echo(f"{name}={value}")
