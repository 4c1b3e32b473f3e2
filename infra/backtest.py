"""Backtests by replay through the running pipeline (see docs/backtest.md).

For each recommender, on a fresh stack (embedded broker + worker subprocess):

1. announce the catalog on ``items`` (before the worker starts, so no event names an
   item the worker has not heard of);
2. **warm-up**: replay every event before ``train_until`` as fast as possible, then wait
   until every user's list reflects all of their warm-up events;
3. **scored part**: replay the rest in time order through `Gate`: a user's next event is
   produced only once the list including their previous event has been published (the
   list they saw before acting), other users' events keep flowing, at most
   ``in_flight`` events await their lists at once and at most ``lookahead`` wait to go;
4. read ``recommendations`` throughout, then score prequentially (`models.prequential`).

Event ids are replaced by the replay sequence (``bt-<n>``) so the worker's duplicate
filter never drops an event and each user's ordinal (``user_events``) stays exact.
"""

from __future__ import annotations

import hashlib
import heapq
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console

from streamrec.settings import Settings
from streamrec.infra.stack import Stack
from streamrec.models import metrics, prequential
from streamrec.models.prequential import Context, Produced, Published
from streamrec.models.registry import needs_training
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.types import Event, Item
from streamrec.streams.replay import Pacer, produce_items, replay
from streamrec.streams.sources import write_jsonl

# Both list lengths the metrics need; the worker publishes the longest.
LIST_LENGTH = max(prequential.KS)
# Default events awaiting their lists at once: each gated event costs one round trip
# (~25-50 ms here), so throughput <= in_flight / round trip; 1 = lockstep (exact, slow).
IN_FLIGHT = 64
# Default cap on events read ahead and waiting to be produced. 86% of ml-100k's
# consecutive events are by the same user, so a small lookahead finds few other users
# to run while one user's burst waits: simulated on ml-100k's scored 20% at a 25 ms
# round trip, 256 -> 99 s, 1024 -> 35 s, 2048 -> 22 s. The price is reordering across
# users (never within a user), measured and reported as reorder_*.
LOOKAHEAD = 2048
# A gated event whose list never comes (dead-lettered, worker down) is released after this.
STALL_TIMEOUT_S = 30.0
# Warm-up lists must all arrive within this (the worker drains a backlog at ~2k ev/s).
WARMUP_TIMEOUT_S = 600.0
# Drill-down: this many users (those with most scored events), this many of their
# events before the chosen point and after it.
DRILL_USERS = 4
DRILL_RECENT = 5
DRILL_NEXT = 5
# Latency histogram: this many equal bins from 0 to the largest p99 times the headroom.
LATENCY_BINS = 40
LATENCY_HEADROOM = 1.25
# Console width when stderr is not a terminal (rich would fall back to 80 and cut the table).
LOG_WIDTH = 200
PACKAGES = ("streamrec", "confluent-kafka", "faust-streaming", "torch", "numpy")

console = Console(stderr=True, width=None if sys.stderr.isatty() else LOG_WIDTH)


@dataclass(frozen=True)
class BacktestConfig:
    recommenders: tuple[str, ...] = ("popularity", "cooccurrence")
    train_until: float | None = None
    rate: float | None = None
    in_flight: int = IN_FLIGHT
    lookahead: int = LOOKAHEAD
    seed: int = 2020
    model_dir: str | None = None
    source: str = ""
    # Transformer training on the warm-up part when no model_dir is given (None: TrainConfig's).
    train_epochs: int | None = None


@dataclass
class Split:
    """The log cut at ``train_until``: training counts, scored events with user ordinals."""

    warmup: int = 0
    scored: list[tuple[Event, int]] = field(default_factory=list)
    train_counts: Counter[str] = field(default_factory=Counter)
    # Each user's event count at the end of warm-up: what their last warm-up list must show.
    warmup_ordinals: dict[str, int] = field(default_factory=dict)


class ListBook:
    """Lists read from ``recommendations``: the latest per user, and every one once scoring starts.

    Called from the reader thread; `Gate` and `wait_for` wait on its condition.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.latest: dict[str, Published] = {}
        self.scored: list[Published] = []
        self.recording = False

    def on_records(self, records: list[Record]) -> None:
        lists = [_published(r) for r in records]
        with self.cond:
            for published in lists:
                self.latest[published.user_id] = published
            if self.recording:
                self.scored.extend(lists)
            self.cond.notify_all()

    def user_events(self, user_id: str) -> int:
        published = self.latest.get(user_id)
        return published.user_events if published else 0

    def wait_for(self, expected: dict[str, int], timeout_s: float) -> int:
        """Block until each user's latest list has ``user_events >= expected``; returns how many lag."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while (lagging := self._lagging(expected)) and time.monotonic() < deadline:
                self.cond.wait(0.5)
        return lagging

    def start_recording(self) -> list[Published]:
        """From now on keep every list; returns the latest per user so far (what users saw)."""
        with self.cond:
            self.recording = True
            return list(self.latest.values())

    def _lagging(self, expected: dict[str, int]) -> int:
        return sum(1 for user, n in expected.items() if self.user_events(user) < n)


def _published(record: Record) -> Published:
    data = orjson.loads(record.value)
    items = tuple(entry["item_id"] for entry in data["items"][:LIST_LENGTH])
    # Publication time: the record's CreateTime, set when the worker's producer took it.
    return Published(data["user_id"], items, int(data["user_events"]), record.timestamp_ms / 1000.0)


class Gate:
    """Per-user gated ordering of a time-ordered stream.

    Yields events in time order, except that an event whose user still awaits the list
    of their previous event is held back (with that user's later events) while other
    users' events go ahead, at most ``in_flight`` awaiting lists and at most
    ``lookahead`` events buffered. Held events wait in per-user queues; users free to go
    sit in a heap keyed by the log position of their next event (O(log n) per event).
    """

    def __init__(
        self, book: ListBook, in_flight: int, lookahead: int = LOOKAHEAD, stall_timeout_s: float = STALL_TIMEOUT_S
    ) -> None:
        self.book = book
        self.in_flight = max(1, in_flight)
        self.lookahead = max(1, lookahead)
        self.stall_timeout_s = stall_timeout_s
        self.awaiting: dict[str, tuple[int, float]] = {}
        self.queues: dict[str, deque[tuple[int, Event, int]]] = {}
        self.ready: list[tuple[int, str]] = []
        self.buffered = 0
        self.stalled = 0

    def order(self, events: Iterable[tuple[Event, int]]) -> Iterator[Event]:
        source = enumerate(events)
        exhausted = False
        while self.buffered or not exhausted:
            with self.book.cond:
                self._settle()
                if not self.ready and not exhausted and self.buffered < self.lookahead:
                    nxt = next(source, None)
                    exhausted = nxt is None
                    if nxt is not None:
                        self._add(nxt[0], *nxt[1])
                    continue
                if not self.ready or len(self.awaiting) >= self.in_flight:
                    self.book.cond.wait(0.05)
                    continue
                event, ordinal = self._pop()
                self.awaiting[event.user_id] = (ordinal, time.monotonic())
            yield event

    def _add(self, position: int, event: Event, ordinal: int) -> None:
        queue = self.queues.setdefault(event.user_id, deque())
        queue.append((position, event, ordinal))
        self.buffered += 1
        if len(queue) == 1 and event.user_id not in self.awaiting:
            heapq.heappush(self.ready, (position, event.user_id))

    def _pop(self) -> tuple[Event, int]:
        _, user = heapq.heappop(self.ready)
        queue = self.queues[user]
        _, event, ordinal = queue.popleft()
        self.buffered -= 1
        if not queue:
            del self.queues[user]
        return event, ordinal

    def _settle(self) -> None:
        """Free users whose awaited list arrived (or stalled); their next event becomes ready."""
        now = time.monotonic()
        for user, (ordinal, since) in list(self.awaiting.items()):
            arrived = self.book.user_events(user) >= ordinal
            if arrived or now - since > self.stall_timeout_s:
                self.stalled += not arrived
                del self.awaiting[user]
                if user in self.queues:
                    heapq.heappush(self.ready, (self.queues[user][0][0], user))


def split(events: Iterable[Event], train_until: float) -> tuple[Iterator[tuple[Event, int]], Split]:
    """Stream the warm-up part (ts < train_until) with user ordinals while filling a
    `Split` with the rest.

    Events get ids ``bt-<n>``; the log must be in time order (checked).
    """
    result = Split()
    ordinals: Counter[str] = Counter()

    def warmup() -> Iterator[tuple[Event, int]]:
        last_ts = float("-inf")
        for n, event in enumerate(events):
            if event.ts < last_ts:
                raise ValueError(f"events must be in time order: event {n} has ts {event.ts} < {last_ts}")
            last_ts = event.ts
            event = replace(event, event_id=f"bt-{n}")
            ordinals[event.user_id] += 1
            if event.ts < train_until:
                result.warmup += 1
                result.train_counts[event.item_id] += 1
                result.warmup_ordinals[event.user_id] = ordinals[event.user_id]
                yield event, ordinals[event.user_id]
            else:
                result.scored.append((event, ordinals[event.user_id]))

    return warmup(), result


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


def run_one(
    name: str,
    settings: Settings,
    events: Callable[[], Iterable[Event]],
    items: Sequence[Item],
    config: BacktestConfig,
) -> tuple[Run, Split]:
    """Replay the log through a fresh stack running ``name``; returns the outcomes."""
    settings = settings.with_(
        recommender=name,
        k=LIST_LENGTH,
        # Own state dir: never touch (or advertise a broker to) a stack run by `streamrec up`.
        data_dir=str(Path(settings.data_dir) / "backtest" / name),
        **({"model_dir": config.model_dir} if config.model_dir else {}),
    )
    started = time.monotonic()
    with ItemsFirstStack(settings, items) as stack:
        book = ListBook()
        reader = TopicReader(stack.settings.bootstrap_servers, stack.settings.topic_recommendations, book.on_records, name="backtest")
        reader.start()
        try:
            startup_s = time.monotonic() - started
            warm, cut = split(events(), config.train_until)
            console.print(f"[bold]{name}[/]: warm-up replay (events before {config.train_until:.0f})")
            t0 = time.monotonic()
            replay(_warmup_order(warm, book, config), stack.settings)
            lagging = book.wait_for(cut.warmup_ordinals, WARMUP_TIMEOUT_S)
            if lagging:
                console.print(f"[yellow]{lagging} users' warm-up lists never arrived[/]")
            warmup_s = time.monotonic() - t0
            outcomes, scored_s, stalled, reorder = _scored_replay(book, cut, stack.settings, config)
        finally:
            reader.stop()
    run = Run(name, outcomes, cut.warmup, warmup_s, scored_s, startup_s, stalled, reorder)
    return run, cut


def _scored_replay(
    book: ListBook, cut: Split, settings: Settings, config: BacktestConfig
) -> tuple[list[prequential.Outcome], float, int, dict[str, float]]:
    seen_before = book.start_recording()
    gate = Gate(book, config.in_flight, config.lookahead)
    produced: list[Produced] = []
    order: list[int] = []
    ordinal_of = {e.event_id: n for e, n in cut.scored}

    def sent(event: Event, at: float) -> None:
        produced.append(Produced(event.user_id, event.item_id, event.ts, ordinal_of[event.event_id], at, event.event_type))
        order.append(int(event.event_id.removeprefix("bt-")))

    console.print(f"scored replay: {len(cut.scored)} events, {config.in_flight} in flight, lookahead {config.lookahead}")
    t0 = time.monotonic()
    replay(gate.order(cut.scored), settings, Pacer(config.rate), total=len(cut.scored), on_sent=sent)
    book.wait_for({p.user_id: p.ordinal for p in produced}, STALL_TIMEOUT_S)
    scored_s = time.monotonic() - t0
    with book.cond:
        lists = seen_before + list(book.scored)
    return prequential.prequential(produced, lists), scored_s, gate.stalled, reordering(order, [p.ts for p in produced])


def reordering(log_index: Sequence[int], ts: Sequence[float]) -> dict[str, float]:
    """How far ahead of each event the replay had already gone when it was produced.

    For the ``n``-th produced event: ``max(log_index[:n]) - log_index[n]`` events and
    ``max(ts[:n]) - ts[n]`` seconds of event time (0 for a replay in log order).

    >>> reordering([0, 2, 1, 3], [0.0, 20.0, 10.0, 30.0])
    {'reorder_max_events': 1, 'reorder_mean_events': 0.25, 'reorder_max_s': 10.0, 'reorder_p99_s': 9.7}
    """
    if not log_index:
        return {}
    ahead_n = np.maximum.accumulate(np.asarray(log_index)) - np.asarray(log_index)
    ahead_s = np.maximum.accumulate(np.asarray(ts)) - np.asarray(ts)
    return {
        "reorder_max_events": int(ahead_n.max()),
        "reorder_mean_events": round(float(ahead_n.mean()), 3),
        "reorder_max_s": float(ahead_s.max()),
        "reorder_p99_s": round(float(np.percentile(ahead_s, 99)), 3),
    }


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


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "absent"
    return out


def run_backtest(
    settings: Settings, events: Callable[[], Iterable[Event]], items: Sequence[Item], config: BacktestConfig
) -> dict[str, Any]:
    """Replay the log once per recommender (fresh stack each) and build the report."""
    train_s = None
    if config.model_dir is None and any(needs_training(name) for name in config.recommenders):
        started = time.monotonic()
        config = replace(config, model_dir=str(train_artifact(settings, events, items, config)))
        train_s = round(time.monotonic() - started, 1)
    runs, cut = [], Split()
    for name in config.recommenders:
        run, cut = run_one(name, settings, events, items, config)
        runs.append(run)
        console.print(f"[bold]{name}[/]: {len(run.outcomes)} scored events in {run.scored_s:.1f} s")
    context = Context(
        catalog=[item.item_id for item in items],
        train_counts=cut.train_counts,
        categories=metrics.category_sets(items),
    )
    report = build_report(runs, cut, context, items, config, settings)
    report["model"]["train_s"] = train_s
    return report


def train_artifact(settings: Settings, events: Callable[[], Iterable[Event]], items: Sequence[Item], config: BacktestConfig) -> Path:
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
    command = [sys.executable, "-m", "streamrec", "train", "--events", str(folder / "events.jsonl"),
               "--items", str(folder / "items.jsonl"), "--out", str(model_dir), "--seed", str(config.seed)]
    if config.train_epochs is not None:
        command += ["--epochs", str(config.train_epochs)]
    console.print(f"training the transformer on the warm-up part: {' '.join(command[2:])}")
    subprocess.run(command, check=True, env={**os.environ, **settings.as_env()})
    return model_dir


def build_report(
    runs: Sequence[Run], cut: Split, context: Context, items: Sequence[Item], config: BacktestConfig, settings: Settings
) -> dict[str, Any]:
    """The ``report.json`` document (also what ``report.html`` is rendered from)."""
    titles = {item.item_id: item.title for item in items}
    return {
        "recommenders": {run.recommender: _row(run, context) for run in runs},
        "over_time": {run.recommender: prequential.over_time(run.outcomes, context) for run in runs},
        "long_tail": _long_tail(runs, context),
        "latency_histogram": latency_histograms(runs),
        "drilldown": drilldown(runs, titles),
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


def _row(run: Run, context: Context) -> dict[str, float]:
    row = prequential.summarize(run.outcomes, context)
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
    first = next(iter(tails.values()), {"train_share": [], "test_share": []})
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
                "shown": {name: [{"item_id": i, "title": titles.get(i, i)} for i in items[: prequential.KS[0]]] for name, items in shown.items()},
                "next": [_described(e, titles) for e in upcoming],
            }
        )
    return out


def _seen_by(run: Run, user: str, point: int) -> tuple[str, ...]:
    """The list ``user`` saw before their ``point``-th scored event in ``run``."""
    mine = [o for o in run.outcomes if o.event.user_id == user]
    return mine[point].seen or () if point < len(mine) else ()


def _described(event: Produced, titles: dict[str, str]) -> dict[str, Any]:
    return {"item_id": event.item_id, "title": titles.get(event.item_id, event.item_id), "event_type": event.event_type, "ts": event.ts}


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
            files[str(path.relative_to(model_dir))] = {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {"dir": str(model_dir), "files": files}
