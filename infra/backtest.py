"""Backtests by replay through the running pipeline (see docs/backtest.md).

For each recommender, on a fresh stack (embedded broker + worker subprocess):

1. announce the catalog on ``items`` (before the worker starts, so no event names an
   item the worker has not heard of);
2. **warm-up**: replay every event before ``train_until`` as fast as possible, then wait
   until every user's list reflects all of their warm-up events;
3. **scored part**: replay the rest in time order through `infra.gating.Gate`: a user's next event is
   produced only once the list including their previous event has been published (the
   list they saw before acting), other users' events keep flowing, at most
   ``in_flight`` events await their lists at once and at most ``lookahead`` wait to go;
4. read ``recommendations`` throughout (`streams.lists.ListBook`), then score
   prequentially (`models.prequential`) into the report document (`infra.backtest_report`).

Event ids are replaced by the replay sequence (``bt-<n>``) so the worker's duplicate
filter never drops an event and each user's ordinal (``user_events``) stays exact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from streamrec.infra.backtest_report import LIST_LENGTH, build_report
from streamrec.infra.gating import IN_FLIGHT, LOOKAHEAD, STALL_TIMEOUT_S, Gate, Split, pausing, reordering, split
from streamrec.infra.retraining import Retraining, base_name, own_model_dir, retrains
from streamrec.infra.stack import Stack
from streamrec.models import metrics, prequential
from streamrec.models.experiments import ArmTally, Experiment, arm_of, parse_experiment, prequential_tally
from streamrec.models.prequential import Context, Produced
from streamrec.models.registry import needs_training
from streamrec.settings import Settings
from streamrec.streams.lists import ListBook
from streamrec.streams.replay import Pacer, produce_items, replay
from streamrec.streams.sources import write_jsonl
from streamrec.types import Event, Item

# Warm-up lists must all arrive within this (the worker drains a backlog at ~2k ev/s).
WARMUP_TIMEOUT_S = 600.0
# Safety bound on the warm-up training (it stops on validation): generous, because
# `streamrec train`'s default (540 s) cut ml-100k's model short on a loaded 2-core machine.
TRAIN_MAX_S = 3600.0
# Console width when stderr is not a terminal (rich would fall back to 80 and cut the table).
LOG_WIDTH = 200

# The one arm of a single recommender's outcomes, tallied to compare with an experiment's arm.
ALONE = "alone"

console = Console(stderr=True, width=None if sys.stderr.isatty() else LOG_WIDTH)


@dataclass(frozen=True)
class BacktestConfig:
    recommenders: tuple[str, ...]
    # Epoch s: events before it warm up (and train), the rest are scored.
    train_until: float
    rate: float | None = None
    in_flight: int = IN_FLIGHT
    lookahead: int = LOOKAHEAD
    seed: int = 2020
    model_dir: str | None = None
    source: str = ""
    # Test hook: cap the warm-up training's epochs (None: it stops on validation alone, as it
    # should; a fixed cap left the drift stream's model at a fraction of its accuracy).
    train_epochs: int | None = None
    # ``<name>+retrain`` runs: a trainer round every this many scored events (`infra.retraining`).
    retrain_every: int = 0
    # Test hook: the candidate of this round (1-based) is degraded, so the gate must refuse it.
    degrade_round: int = 0
    # An A/B experiment (`models.experiments.parse_experiment`): all its arms in one more
    # replay, each arm also reported as a run of its own ``<experiment>/<arm>``.
    experiment: str = ""


def _warmup_order(warm: Iterator[tuple[Event, int]], book: ListBook, config: BacktestConfig) -> Iterator[Event]:
    """Warm-up goes as fast as possible, except in lockstep: then it is gated too, so the
    list each user has when scoring starts is reproducible as well."""
    if config.in_flight == 1:
        return Gate(book, in_flight=1).order(warm)
    return (event for event, _ in warm)


@dataclass
class Run:
    """Everything one recommender's replay produced."""

    recommender: str
    outcomes: list[prequential.Outcome]
    warmup_events: int
    warmup_s: float
    scored_s: float
    startup_s: float
    stalled: int
    reorder: dict[str, float] = field(default_factory=dict)
    retraining: list[dict[str, Any]] = field(default_factory=list)


def run_one(
    name: str,
    settings: Settings,
    events: Callable[[], Iterable[Event]],
    items: Sequence[Item],
    config: BacktestConfig,
) -> tuple[Run, Split]:
    """Replay the log through a fresh stack running ``name``; returns the outcomes.

    A ``<recommender>+retrain`` name runs ``<recommender>`` on its own copy of the model
    folder, with trainer rounds every ``config.retrain_every`` scored events (`infra.retraining`).
    """
    model_dir = config.model_dir
    if model_dir and retrains(name):
        model_dir = own_model_dir(model_dir, settings.data_dir, name)
    settings = settings.with_(
        recommender=base_name(name),
        k=LIST_LENGTH,
        # Own state dir: never touch (or advertise a broker to) a stack run by `streamrec up`.
        data_dir=str(Path(settings.data_dir) / "backtest" / name),
        **({"model_dir": model_dir} if model_dir else {}),
    )
    started = time.monotonic()
    with ItemsFirstStack(settings, items) as stack:
        book = ListBook()
        reader = book.follow(stack.settings, "backtest")
        trainer = None
        if retrains(name):
            worker_log = stack.log_dir / "worker-0.log"
            trainer = Retraining(name, stack.settings, items, worker_log, config.degrade_round)
        try:
            startup_s = time.monotonic() - started
            warm, cut = split(events(), config.train_until)
            console.print(f"[bold]{name}[/]: warm-up replay (events before {config.train_until:.0f})")
            t0 = time.monotonic()
            replay(_warmup_order(_observed(warm, trainer), book, config), stack.settings)
            lagging = book.wait_for(cut.warmup_ordinals, WARMUP_TIMEOUT_S)
            if lagging:
                console.print(f"[yellow]{lagging} users' warm-up lists never arrived[/]")
            warmup_s = time.monotonic() - t0
            outcomes, scored_s, stalled, reorder = _scored_replay(book, cut, stack.settings, config, trainer)
        finally:
            reader.stop()
    run = Run(name, outcomes, cut.warmup, warmup_s, scored_s, startup_s, stalled, reorder)
    run.retraining = trainer.report() if trainer else []
    return run, cut


def _observed(warm: Iterator[tuple[Event, int]], trainer: Retraining | None) -> Iterator[tuple[Event, int]]:
    """The warm-up events, each also handed to the trainer's history (if any)."""
    for event, ordinal in warm:
        if trainer is not None:
            trainer.observe(event)
        yield event, ordinal


def _scored_replay(
    book: ListBook, cut: Split, settings: Settings, config: BacktestConfig, trainer: Retraining | None = None
) -> tuple[list[prequential.Outcome], float, int, dict[str, float]]:
    seen_before = book.start_recording()
    gate = Gate(book, config.in_flight, config.lookahead)
    produced: list[Produced] = []
    order: list[int] = []
    ordinal_of = {e.event_id: n for e, n in cut.scored}

    def sent(event: Event, at: float) -> None:
        produced.append(
            Produced(event.user_id, event.item_id, event.ts, ordinal_of[event.event_id], at, event.event_type)
        )
        order.append(int(str(event.event_id).removeprefix("bt-")))
        if trainer is not None:
            trainer.observe(event)

    def released() -> tuple[dict[str, int], float]:
        return {p.user_id: p.ordinal for p in produced}, produced[-1].ts

    def pause(n: int) -> None:
        if trainer is not None and n < len(cut.scored):  # after the last event a round would score nothing
            trainer.pause(book, released, n)

    console.print(
        f"scored replay: {len(cut.scored)} events, {config.in_flight} in flight, lookahead {config.lookahead}"
    )
    t0 = time.monotonic()
    ordered = gate.order(cut.scored)
    if trainer is not None and config.retrain_every > 0:
        ordered = pausing(ordered, config.retrain_every, pause)
    replay(ordered, settings, Pacer(config.rate), total=len(cut.scored), on_sent=sent)
    book.wait_for({p.user_id: p.ordinal for p in produced}, STALL_TIMEOUT_S)
    scored_s = time.monotonic() - t0
    with book.cond:
        lists = seen_before + list(book.recorded)
    return prequential.prequential(produced, lists), scored_s, gate.stalled, reordering(order, [p.ts for p in produced])


class ItemsFirstStack(Stack):
    """A `Stack` that announces the catalog before its first worker starts.

    The worker loads the whole catalog before consuming events; items announced later
    race with the first events, which would be dead-lettered as unknown items.
    """

    def __init__(self, settings: Settings, items: Sequence[Item]) -> None:
        super().__init__(settings)
        self.items = items
        self.announced = False

    def start_worker(self, name: str) -> None:
        if not self.announced:
            produce_items(self.items, self.settings)
            self.announced = True
        super().start_worker(name)


def run_backtest(
    settings: Settings, events: Callable[[], Iterable[Event]], items: Sequence[Item], config: BacktestConfig
) -> dict[str, Any]:
    """Replay the log once per recommender and once for the experiment, if any (fresh
    stack each), and build the report."""
    experiment = parse_experiment(config.experiment) if config.experiment else None
    specs = [base_name(name) for name in config.recommenders]
    specs += [arm.recommender for arm in experiment.arms] if experiment else []
    train_s = None
    if config.model_dir is None and any(needs_training(spec) for spec in specs):
        started = time.monotonic()
        config = replace(config, model_dir=str(train_artifact(settings, events, items, config)))
        train_s = round(time.monotonic() - started, 1)
    runs, cut = [], Split()
    for name in config.recommenders:
        run, cut = run_one(name, settings, events, items, config)
        runs.append(run)
        console.print(f"[bold]{name}[/]: {len(run.outcomes)} scored events in {run.scored_s:.1f} s")
    together = None
    if experiment is not None:
        together, cut = run_one(experiment.name, settings.with_(experiment=config.experiment), events, items, config)
        console.print(
            f"[bold]{experiment.name}[/]: {len(together.outcomes)} scored events in {together.scored_s:.1f} s"
        )
        runs += arm_runs(together, experiment)
    context = Context(
        catalog=[item.item_id for item in items],
        train_counts=cut.train_counts,
        categories=metrics.category_sets(items),
    )
    report = build_report(runs, cut, context, items, config, settings)
    report["model"]["train_s"] = train_s
    if experiment is not None and together is not None:
        report["experiments"] = {experiment.name: experiment_summary(together, experiment, runs, context, config.seed)}
    return report


def arm_runs(run: Run, experiment: Experiment) -> list[Run]:
    """The experiment's replay split by arm: ``<experiment>/<arm>`` with its users' outcomes."""
    return [
        replace(
            run,
            recommender=f"{experiment.name}/{arm.name}",
            outcomes=[o for o in run.outcomes if arm_of(experiment, o.event.user_id) == arm.name],
        )
        for arm in experiment.arms
    ]


def experiment_summary(
    run: Run, experiment: Experiment, runs: Sequence[Run], context: Context, seed: int
) -> dict[str, Any]:
    """`models.experiments.Tally.summary` of the replay; for each arm whose recommender was
    also replayed alone, that run's figures on the arm's users (``alone_same_users``): the
    check that an arm measures what a backtest of its recommender alone would."""
    tally = prequential_tally(run.outcomes, partial(arm_of, experiment))
    summary = tally.summary(experiment, len(context.catalog), context.head, seed=seed)
    alone = {r.recommender: r for r in runs}
    for arm in experiment.arms:
        single = alone.get(arm.recommender)
        if single is not None:
            users = set(tally.arms[arm.name].index) if arm.name in tally.arms else set()
            mine = prequential_tally((o for o in single.outcomes if o.event.user_id in users), lambda _: ALONE)
            found = mine.arms.get(ALONE, ArmTally()).intervals(context.head, len(context.catalog), seed=seed)
            summary["arms"][arm.name]["alone_same_users"] = {m: iv.as_dict() for m, iv in found.items()}
    return summary


def train_artifact(
    settings: Settings, events: Callable[[], Iterable[Event]], items: Sequence[Item], config: BacktestConfig
) -> Path:
    """Train the transformer on the warm-up part with `streamrec train`; returns the model dir.

    Runs the models issue's command as a child process on JSONL copies of the warm-up
    events and the catalog, so training is exactly what an operator would run.
    """
    folder = Path(settings.data_dir) / "backtest" / "training"
    folder.mkdir(parents=True, exist_ok=True)
    warm, _ = split(events(), config.train_until)
    write_jsonl(folder / "events.jsonl", (event for event, _ in warm))
    write_jsonl(folder / "items.jsonl", items)
    model_dir = folder / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "streamrec",
        "train",
        "--events",
        str(folder / "events.jsonl"),
        "--items",
        str(folder / "items.jsonl"),
        "--out",
        str(model_dir),
        "--seed",
        str(config.seed),
        "--max-seconds",
        str(TRAIN_MAX_S),
    ]
    if config.train_epochs is not None:
        command += ["--epochs", str(config.train_epochs)]
    console.print(f"training the transformer on the warm-up part: {' '.join(command[2:])}")
    subprocess.run(command, check=True, env={**os.environ, **settings.as_env()})
    return model_dir
