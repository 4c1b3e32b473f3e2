"""The backtest's ``report.json`` document, built from the runs (`infra.report` renders it).

Per recommender: the prequential summary plus run timings and reordering; metrics over
event time; long-tail exposure; latency histograms on shared bins; a per-user
drill-down; and what the run used (config, settings, package versions, model files).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamrec.infra.gating import Split
from streamrec.models import prequential
from streamrec.models.experiments import interval_columns
from streamrec.models.prequential import Context, Produced
from streamrec.settings import Settings
from streamrec.types import Item

if TYPE_CHECKING:
    from streamrec.infra.backtest import BacktestConfig, Run

# Both list lengths the metrics need; the worker publishes the longest.
LIST_LENGTH = max(prequential.KS)
# Drill-down: this many users (those with most scored events), this many of their
# events before the chosen point and after it.
DRILL_USERS = 4
DRILL_RECENT = 5
DRILL_NEXT = 5
# Latency histogram: this many equal bins from 0 to the largest p99 times the headroom.
LATENCY_BINS = 40
LATENCY_HEADROOM = 1.25
PACKAGES = ("streamrec", "confluent-kafka", "faust-streaming", "torch", "numpy")


def build_report(
    runs: Sequence[Run], cut: Split, context: Context, items: Sequence[Item], config: BacktestConfig, settings: Settings
) -> dict[str, Any]:
    """The ``report.json`` document (also what ``report.html`` is rendered from)."""
    titles = {item.item_id: item.title for item in items}
    return {
        "recommenders": {run.recommender: _row(run, context) for run in runs},
        "over_time": {
            run.recommender: prequential.over_time(run.outcomes, context, extra=_intervals(context)) for run in runs
        },
        "long_tail": _long_tail(runs, context),
        "latency_histogram": latency_histograms(runs),
        "drilldown": drilldown(runs, titles),
        # Trainer rounds of the ``+retrain`` runs, in replay order (`infra.retraining.Round`).
        "retraining": [entry for run in runs for entry in run.retraining],
        "data": {
            "source": config.source,
            "train_until": config.train_until,
            "warmup_events": cut.warmup,
            "scored_events": len(cut.scored),
            "users": len(cut.warmup_ordinals.keys() | {e.user_id for e, _ in cut.scored}),
            "items": len(items),
        },
        "config": {**asdict(config), "list_length": LIST_LENGTH, "settings": _settings_used(settings)},
        "versions": versions(),
        "model": model_artifact(config.model_dir),
    }


def _intervals(context: Context) -> Callable[[Sequence[prequential.Outcome]], dict[str, float]]:
    """95% intervals (per-user bootstrap, `models.experiments.interval_columns`) of a row's metrics."""
    return lambda outcomes: interval_columns(outcomes, context.head, len(context.catalog))


def _row(run: Run, context: Context) -> dict[str, float]:
    row = prequential.summarize(run.outcomes, context)
    row.update(_intervals(context)(run.outcomes))
    row.update(
        wall_s=round(run.startup_s + run.warmup_s + run.scored_s, 2),
        startup_s=round(run.startup_s, 2),
        warmup_s=round(run.warmup_s, 2),
        scored_s=round(run.scored_s, 2),
        warmup_events=run.warmup_events,
        throughput_eps=len(run.outcomes) / run.scored_s if run.scored_s else 0.0,
        warmup_throughput_eps=run.warmup_events / run.warmup_s if run.warmup_s else 0.0,
        stalled=run.stalled,
        **run.reorder,
    )
    return row


def _long_tail(runs: Sequence[Run], context: Context) -> dict[str, Any]:
    tails = {run.recommender: prequential.long_tail(run.outcomes, context) for run in runs}
    first: dict[str, Any] = next(iter(tails.values()), {"train_share": [], "test_share": []})
    return {
        "train_share": first["train_share"],
        "test_share": first["test_share"],
        "exposure_share": {name: tail["exposure_share"] for name, tail in tails.items()},
        "head_items": len(context.head),
    }


def latency_histograms(runs: Sequence[Run]) -> dict[str, dict[str, list[float]]]:
    """Counts per latency bin (ms), same edges for every recommender; the last bin holds the rest."""
    values = {run.recommender: prequential.latencies_ms(run.outcomes) for run in runs}
    p99s = [float(np.percentile(v, 99)) for v in values.values() if len(v)]
    top = max(p99s, default=1.0) * LATENCY_HEADROOM
    edges = np.linspace(0.0, top, LATENCY_BINS + 1)
    return {
        name: {"edges": edges.tolist(), "counts": np.histogram(np.clip(v, 0.0, top), bins=edges)[0].tolist()}
        for name, v in values.items()
    }


def drilldown(runs: Sequence[Run], titles: dict[str, str], n_users: int = DRILL_USERS) -> list[dict[str, Any]]:
    """For the users with most scored events: their events before a point in the scored
    part, the list each recommender showed them right then, and what they did next."""
    if not runs:
        return []
    by_user: dict[str, list[int]] = {}
    for n, outcome in enumerate(runs[0].outcomes):
        by_user.setdefault(outcome.event.user_id, []).append(n)
    chosen = sorted(by_user, key=lambda u: (-len(by_user[u]), u))[:n_users]
    out = []
    for user in chosen:
        point = min(DRILL_RECENT, len(by_user[user]) - 1)
        recent = [runs[0].outcomes[n].event for n in by_user[user][:point]]
        upcoming = [runs[0].outcomes[n].event for n in by_user[user][point : point + DRILL_NEXT]]
        shown = {run.recommender: _seen_by(run, user, point) for run in runs}
        out.append(
            {
                "user_id": user,
                "recent": [_described(e, titles) for e in recent],
                "shown": {
                    name: [{"item_id": i, "title": titles.get(i, i)} for i in items[: prequential.KS[0]]]
                    for name, items in shown.items()
                },
                "next": [_described(e, titles) for e in upcoming],
            }
        )
    return out


def _seen_by(run: Run, user: str, point: int) -> tuple[str, ...]:
    """The list ``user`` saw before their ``point``-th scored event in ``run``."""
    mine = [o for o in run.outcomes if o.event.user_id == user]
    return mine[point].seen or () if point < len(mine) else ()


def _described(event: Produced, titles: dict[str, str]) -> dict[str, Any]:
    return {
        "item_id": event.item_id,
        "title": titles.get(event.item_id, event.item_id),
        "event_type": event.event_type,
        "ts": event.ts,
    }


def _settings_used(settings: Settings) -> dict[str, Any]:
    keep = ("partitions", "window", "fetch_wait_ms", "batch_max", "batch_window_s", "model_dir")
    return {name: getattr(settings, name) for name in keep}


def model_artifact(model_dir: str | None) -> dict[str, Any]:
    """The artifact a run used: its files with sizes and SHA-256 (None when models learn online only)."""
    if not model_dir or not Path(model_dir).is_dir():
        return {"dir": model_dir, "files": {}}
    files = {}
    for path in sorted(Path(model_dir).rglob("*")):
        if path.is_file():
            files[str(path.relative_to(model_dir))] = {
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
    return {"dir": str(model_dir), "files": files}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "absent"
    return out
