"""Options and checks several commands share: the broker to use, a log to read, recommender names.

Every check runs while click parses the command line, so a bad name stops the command
before anything (a broker, a worker, training) has started.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from streamrec.infra.stack import running_broker
from streamrec.models.registry import FACTORIES, known, pinned_version
from streamrec.models.versions import has_version
from streamrec.settings import Settings
from streamrec.streams.sources import DATASETS, LogSource

RECOMMENDERS_HELP = f"{' | '.join(FACTORIES)} (a +tail one may end in @KNOB, e.g. fusion+tail@0.5)"

dataset_option = click.option("--dataset", type=click.Choice(DATASETS), help="A built-in dataset instead of FILE.")


def connected(settings: Settings) -> Settings:
    """Settings pointing at a real broker: the given one, or a running local stack's."""
    url = running_broker(settings)
    if url is None:
        raise click.UsageError("no broker: run `make up` (or `streamrec up`) first, or set STREAMREC_BROKER")
    return settings.with_(broker=url)


def log_source(
    dataset: str | None = None,
    events_file: str | Path | None = None,
    items_file: str | Path | None = None,
    limit: int | None = None,
) -> LogSource:
    """A `LogSource` from command-line options; a wrong combination is a usage error."""
    try:
        return LogSource(dataset, events_file, items_file, limit=limit)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def check_recommender(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: ``value`` must be a name `models.registry.make_recommender` accepts."""
    if value is not None and not known(value):
        raise click.BadParameter(f"{value!r} is not one of {RECOMMENDERS_HELP}", ctx, param)
    return value


def require_known_models(settings: Settings) -> Settings:
    """The settings, if their recommender (from a file or STREAMREC_RECOMMENDER) is a known
    name and their experiment, if any, one `models.experiments.parse_experiment` accepts:
    checked in the command, so a bad one is one line before a worker or server starts."""
    from streamrec.models.experiments import parse_experiment

    if not known(settings.recommender):
        raise click.UsageError(f"recommender {settings.recommender!r} is not one of {RECOMMENDERS_HELP}")
    if settings.experiment:
        try:
            parse_experiment(settings.experiment)
        except ValueError as exc:
            raise click.UsageError(f"setting experiment: {exc}") from None
    return settings


def require_servable(settings: Settings) -> Settings:
    """`require_known_models`, and every pinned model version there: what a worker checks."""
    require_pinned_versions(served_specs(require_known_models(settings)), settings.model_dir)
    return settings


def require_pinned_versions(specs: Iterable[str], model_dir: str | None) -> None:
    """Every ``<name>#<version>`` of ``specs`` names a complete version under ``model_dir``
    (None: there is none yet), so a missing one stops the command before anything starts."""
    for spec in specs:
        version = pinned_version(spec)
        if version is not None and (model_dir is None or not has_version(model_dir, version)):
            where = f"under {model_dir}" if model_dir else "without --model-dir (a backtest trains its own)"
            raise click.UsageError(f"recommender {spec!r}: no model version {version} {where}")


def served_specs(settings: Settings) -> list[str]:
    """The recommender specs ``settings`` serve: the experiment's arms', else the recommender."""
    from streamrec.models.experiments import parse_experiment

    return (
        [a.recommender for a in parse_experiment(settings.experiment).arms]
        if settings.experiment
        else [settings.recommender]
    )


def check_recommenders(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """Click callback: a comma list of recommender names, each checked.

    >>> check_recommenders(None, None, "popularity, fusion+tail@0.5")  # type: ignore[arg-type]
    ('popularity', 'fusion+tail@0.5')
    """
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    for name in names:
        check_recommender(ctx, param, name)
    if not names:
        raise click.BadParameter("name at least one recommender", ctx, param)
    return names


recommender_option = click.option(
    "--recommender", callback=check_recommender, metavar="NAME", help=f"{RECOMMENDERS_HELP}. Default: the settings'."
)
