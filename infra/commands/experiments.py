"""``streamrec experiments``: the running A/B experiment's arms, as ``GET /v1/experiments`` gives them."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from streamrec.settings import Settings

# Metrics shown per arm (models.experiments.METRICS), with the difference from control.
COLUMNS = ("hr@10", "ndcg@10", "mrr@10", "coverage@10", "tail_share@10")
TIMEOUT_S = 10.0
# Console width when stdout is not a terminal (rich would fall back to 80 and squash the table).
PIPED_WIDTH = 200


def cell(interval: Mapping[str, float | None] | None) -> str:
    """``estimate [low, high]``, or a dash without data.

    >>> cell({"estimate": 0.1, "low": 0.05, "high": 0.15}), cell({"estimate": None, "low": None, "high": None})
    ('0.1000 [0.0500, 0.1500]', '–')
    """
    if not interval or interval.get("estimate") is None:
        return "–"
    low, high = interval.get("low"), interval.get("high")
    bounds = f" [{low:.4f}, {high:.4f}]" if low is not None and high is not None else ""
    return f"{interval['estimate']:.4f}{bounds}"


def experiments_table(name: str, summary: Mapping[str, Any]) -> Table:
    """One row per arm (estimate and 95% interval), one per treatment arm's difference, and,
    from a backtest, each arm's recommender replayed alone on the same users."""
    table = Table(title=f"experiment {name} (95% intervals, per-user bootstrap)")
    for column in ("arm", "recommender", "share", "users", "events", *COLUMNS):
        table.add_column(column, justify="left" if column in ("arm", "recommender") else "right")
    arms = summary["arms"]
    for arm, row in arms.items():
        table.add_row(
            arm, row["recommender"], f"{row['share']:.2f}", str(row["users"]), str(row["events"]),
            *(cell(row.get(c)) for c in COLUMNS),
        )  # fmt: skip
    for arm, row in arms.items():
        if "difference" in row:
            label = f"{arm} − {summary['control']}"
            table.add_row(label, "difference", "", "", "", *(cell(row["difference"].get(c)) for c in COLUMNS))
    for arm, row in arms.items():
        if "alone_same_users" in row:  # a backtest's lone replay of the arm's recommender, on its users
            alone = row["alone_same_users"]
            table.add_row(arm, f"{row['recommender']} alone", "", "", "", *(cell(alone.get(c)) for c in COLUMNS))
    decisions = [
        f"{arm}: {row['decision']['action']} ({row['decision']['reason']})"
        for arm, row in arms.items()
        if "decision" in row
    ]
    table.caption = "; ".join(decisions)
    return table


def check_experiment(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Click callback: an experiment `models.experiments.parse_experiment` accepts (or none)."""
    from streamrec.models.experiments import parse_experiment

    if value:
        try:
            parse_experiment(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command("experiments")
@click.option("--url", help="The server's base URL (default: http://<http_host>:<http_port>).")
@click.option(
    "--report",
    "report_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Read a backtest's report.json (streamrec backtest --experiment) instead of the server.",
)
@click.pass_obj
def experiments(settings: Settings, url: str | None, report_file: str | None) -> None:
    """Show the running A/B experiment: each arm's metrics with 95% intervals."""
    found = _replayed(report_file) if report_file else _live(settings, url)
    if not found:
        click.echo("no experiment is running (set STREAMREC_EXPERIMENT for the workers)")
    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    for table in _tables(found, report_file or "the server's answer"):
        console.print(table)


def _tables(found: Mapping[str, Any], source: str) -> list[Table]:
    """One table per experiment; a one-line error if ``source`` held something else."""
    try:
        return [experiments_table(name, summary) for name, summary in found.items()]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # JSON of another shape
        raise click.ClickException(f"{source}: not an experiment summary ({type(exc).__name__}: {exc})") from None


def _experiments_of(body: Any, source: str) -> dict[str, Any]:
    """The ``experiments`` object of a report or an answer, or a one-line error."""
    found = body.get("experiments") if isinstance(body, dict) else None
    if not isinstance(found, dict):
        raise click.ClickException(f"{source} holds no experiments (a report of `streamrec backtest --experiment`)")
    return found


def _replayed(path: str) -> dict[str, Any]:
    import orjson

    try:
        with open(path, "rb") as report:
            return _experiments_of(orjson.loads(report.read()), path)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None


def _live(settings: Settings, url: str | None) -> dict[str, Any]:
    import httpx

    base = url or f"http://{settings.http_host}:{settings.http_port}"
    keys = [k for k in settings.http_api_keys.split(",") if k]
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    try:
        response = httpx.get(f"{base}/v1/experiments", headers=headers, timeout=TIMEOUT_S)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:  # ValueError: an answer that is no JSON
        raise click.ClickException(f"cannot read {base}/v1/experiments: {exc}") from None
    return _experiments_of(body, f"{base}/v1/experiments")
