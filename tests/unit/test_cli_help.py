"""`streamrec --help`: plain text (no RST markup) and listed without importing a command."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from streamrec.infra.cli import COMMANDS, SHORT_HELP_LIMIT, main, short_help


def command_paths() -> list[list[str]]:
    """Every command and subcommand, as the words that name it."""
    paths = []
    for name in sorted(COMMANDS):
        command = main.get_command(click.Context(main), name)
        subcommands = sorted(command.commands) if isinstance(command, click.Group) else []
        paths += [[name]] + [[name, sub] for sub in subcommands]
    return paths


@pytest.mark.parametrize("words", command_paths(), ids=" ".join)
def test_help_shows_no_rst_markup(words: list[str]) -> None:
    """click prints docstrings as written: RST's double backticks would show literally."""
    result = CliRunner().invoke(main, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "``" not in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_listed_help_is_the_commands_own(name: str) -> None:
    """The one-line help read from the source is what click would show after importing it."""
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert short_help(name) == command.get_short_help_str(SHORT_HELP_LIMIT)


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys; from streamrec.infra.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "print([m for m in sys.modules if m.startswith('streamrec.infra.commands.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
