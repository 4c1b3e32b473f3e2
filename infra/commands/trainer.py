"""``streamrec trainer run`` and ``streamrec trainer rollback``: the loop that closes itself.

``run`` follows the ``events`` topic and the catalog (``items``), keeps the newest
``trainer_history`` events, and runs a round (`streamrec.models.trainer`) every
``trainer_every_events`` new events or ``trainer_every_s`` seconds: a candidate warm-started
from the live version, promoted as a new version under ``model_dir`` only if the gate
finds it not worse on the newest events. Workers hot-reload promoted versions. Its counters
(rounds, promoted, refused, capped) and the last decision are logged and written to
``<data_dir>/trainer.json``.

Why ``events`` and not ``events.learning``: a learning record carries neither the user id
nor more than the 5 newest window entries, and the transformer trains on whole user
sequences. The trainer applies what the worker applies: valid events of catalog items,
duplicates (same ``event_id``) dropped.

With ``trainer_challenger_share`` > 0 a gated candidate goes on trial instead
(`streamrec.models.challenger`): a share of the traffic, promoted or retired on its online
NDCG@10 by `streamrec.infra.trials.Trials`; no round runs during a trial.

``rollback`` retires the current version (`streamrec.models.promotion.rollback`).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import OrderedDict
from pathlib import Path

import click
import orjson

from streamrec.settings import Settings
from streamrec.types import Event

log = logging.getLogger(__name__)

# How often the loop drains the readers and checks whether a round is due.
POLL_S = 1.0
# Event ids remembered to drop redeliveries and producer duplicates (bounded memory).
SEEN_IDS = 100_000
STATUS_FILE = "trainer.json"
# Longest the trainer waits for the catalog before following events (as the worker does).
CATALOG_WAIT_S = 30.0


class Intake:
    """Events from the ``events`` topic as the worker would apply them; the reader thread
    calls `on_records`, the loop `drain`s."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.rejected = 0

    def on_records(self, records: list) -> None:
        for record in records:
            self._queue.put(record.value)

    def drain(self, catalog: set[str] | dict) -> list[Event]:
        """Queued events that are valid, name a catalog item and were not seen before."""
        from streamrec.streams.contracts import InvalidEvent, parse_event

        out: list[Event] = []
        while True:
            try:
                value = self._queue.get_nowait()
            except queue.Empty:
                return out
            try:
                event = parse_event(value)
            except InvalidEvent:
                self.rejected += 1
                continue
            if event.item_id not in catalog or self._repeat(event.event_id):
                self.rejected += 1
                continue
            out.append(event)

    def _repeat(self, event_id: str | None) -> bool:
        if event_id is None:
            return False
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return False


@click.group()
def trainer() -> None:
    """The continual trainer: rounds, guarded promotion, rollback (docs/trainer.md)."""


@trainer.command()
@click.option("--max-rounds", type=int, default=None, help="Stop after this many rounds (default: run until stopped).")
@click.pass_obj
def run(settings: Settings, max_rounds: int | None) -> None:
    """Follow events and items; run rounds; promote candidates the gate accepts."""
    from streamrec.infra.commands.pipeline import connected
    from streamrec.models.text_encoder import TextEncoder
    from streamrec.models.trainer import Trainer, yield_to_workers
    from streamrec.streams.broadcast import TopicReader
    from streamrec.streams.catalog import Catalog

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    yield_to_workers()
    settings = connected(settings)
    catalog, intake = Catalog(), Intake()
    events = TopicReader(settings.bootstrap_servers, settings.topic_events, intake.on_records, name="trainer")
    readers = [catalog.follow(settings.bootstrap_servers, settings.topic_items, name="trainer"), events.start()]
    if not readers[0].wait_caught_up(CATALOG_WAIT_S):  # events of items not yet read would be dropped
        log.warning("catalog still loading after %.0f s; starting anyway", CATALOG_WAIT_S)
    encoder = TextEncoder(cache_dir=Path(settings.data_dir) / "text_cache")
    loop = Trainer(settings.model_dir, encoder, trainer_config(settings))
    trials = challenger_trials(settings, loop)  # None: candidates are promoted at once
    decision = None
    try:
        while max_rounds is None or loop.stats["rounds"] < max_rounds:
            time.sleep(POLL_S)
            catalog.refresh()
            loop.observe(intake.drain(catalog.items))
            ended = trials is not None and trials.tick(time.time(), len(catalog.items))
            due = loop.due(time.time()) and (trials is None or not trials.running)  # no round during a trial
            if due:
                decision = loop.round(list(catalog.items.values()), time.time())
            if due or ended:
                judged = trials.referee if trials is not None else None
                stats = loop.stats | (judged.stats if judged else {}) | {"rejected": intake.rejected}
                write_status(settings, stats, decision, judged.decisions if judged else None)
    except KeyboardInterrupt:
        pass
    finally:
        for reader in [*readers, *([trials] if trials is not None else [])]:
            reader.stop()


def challenger_trials(settings: Settings, loop):
    """With ``trainer_challenger_share`` > 0: ``loop`` publishes candidates as challengers
    (`streamrec.models.challenger`), and the returned `streamrec.infra.trials.Trials`
    (started) decides on them; else None."""
    if settings.trainer_challenger_share <= 0:
        return None
    from streamrec.infra.trials import Trials
    from streamrec.models.challenger import publisher
    from streamrec.models.continual import degrade
    from streamrec.models.trainer import save

    hook = degrade if settings.trainer_degrade else None
    loop.publish = publisher(save, settings.trainer_challenger_share, hook)
    return Trials(settings).start()


def trainer_config(settings: Settings):
    """The trainer's configuration from the settings (the worker's windows and list length)."""
    from streamrec.models.online_eval import StreamConfig
    from streamrec.models.trainer import TrainerConfig

    stream = StreamConfig(window=settings.window, exclude_recent=settings.exclude_recent, k=settings.k)
    return TrainerConfig(
        history=settings.trainer_history,
        every_events=settings.trainer_every_events,
        every_s=settings.trainer_every_s,
        stream=stream,
        new_item_boost=settings.new_item_boost,
        # With challengers, the online trial must catch a degraded one (`challenger_trials`).
        degrade=bool(settings.trainer_degrade) and settings.trainer_challenger_share <= 0,
    )


def write_status(settings: Settings, stats: dict, decision, trials: list | None = None) -> None:
    """Counters, the last round's decision and the ended trials' (with a challenger share),
    for operators and tests (replaced atomically)."""
    status: dict = {"stats": dict(stats)}
    if decision is not None:
        v = decision.verdict
        status["last"] = {
            "kind": decision.kind,
            "promoted": v.promote,
            "reason": v.reason,
            "version": decision.version,
            "metrics": decision.candidate.metrics,
        }
    if trials is not None:
        status["trials"] = trials
    path = Path(settings.data_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(status, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    tmp.replace(path)


@trainer.command()
@click.pass_obj
def rollback(settings: Settings) -> None:
    """Make the previous model version current (the current one is kept as .retired-<version>)."""
    from streamrec.models.promotion import rollback as retire

    try:
        retired, current = retire(settings.model_dir)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"retired {retired}; current version: {current or 'none'}")
