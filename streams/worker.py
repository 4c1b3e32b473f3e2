"""The stream processor: ``events`` -> per-user RocksDB state -> ``recommendations``.

One Faust agent consumes ``events`` in micro-batches. For each event it validates
(bad input goes to ``events.dlq`` with the reason), applies it idempotently to the
user's state in a RocksDB-backed Faust table, and lets the recommender learn from it.
At the end of the batch every touched user is scored at once (models are batched) and
one refreshed top-K list per user is published.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT

from streamrec.settings import Settings
from streamrec.models.versions import latest_version
from streamrec.types import Interaction
from streamrec.models.base import Recommender
from streamrec.models.registry import RecommenderOptions, initial_recommender, make_recommender, uses_artifacts
from streamrec.streams.catalog import Catalog
from streamrec.streams.learning import CONTEXT as LEARNING_CONTEXT
from streamrec.streams.learning import Entry, LearningLog, encode_batch
from streamrec.types import Event
from streamrec.streams.contracts import InvalidEvent, dead_letter, parse_event, recommendation_message
from streamrec.streams.state import UserState
from streamrec.streams.topics import topic_specs
from streamrec.streams.workdir import ready_marker, worker_dir

log = logging.getLogger(__name__)

APP_ID = "streamrec"
USERS_TABLE = "users"
# Tansu holds a group join for ~session/2: Faust's default 60 s session means ~38 s
# start-up. 10 s keeps start-up and failover short; heartbeats must be well inside it.
SESSION_TIMEOUT_S = 10.0
HEARTBEAT_S = 1.0
STATS_EVERY_S = 30.0
# How often workers look for a newer model artifact (a directory listing: cheap).
MODEL_POLL_S = 5.0
CATCH_UP_WAIT_S = 30.0
UNKNOWN_ITEM_GRACE_S = 0.25
# Unknown item ids remembered as already given their grace (then forgotten all at once):
# a stream of events for one bogus item costs one grace, not one per batch.
GRACE_MEMORY = 10_000


@dataclass
class Touched:
    """A user changed in this micro-batch: state, newest event, and its Faust event."""

    state: UserState
    event: Event
    source: EventT


def use_fetch_wait(ms: int) -> None:
    """Override Faust's hard-coded ``fetch_max_wait_ms=1500`` (freshness would be ~1 s).

    Faust builds its aiokafka consumer with a literal 1500 ms; the consumer reads the
    value from ``_fetch_max_wait_ms`` when it starts, so setting it after construction
    is enough.
    """
    original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "streamrec_fetch_wait", None) == ms:
        return

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms
        return consumer

    create.streamrec_fetch_wait = ms  # type: ignore[attr-defined]
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create


def create_app(settings: Settings, worker_name: str) -> faust.App:
    """A Faust app for one worker process (all workers share the consumer group)."""
    use_fetch_wait(settings.fetch_wait_ms)
    return faust.App(
        APP_ID,
        broker=settings.broker,
        store="rocksdb://",
        datadir=str(worker_dir(settings.data_dir, worker_name)),
        topic_partitions=settings.partitions,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_S,
        recovery_consistency_check=bool(settings.recovery_check),
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        stream_wait_empty=False,
    )


def set_current_event(event: EventT) -> None:
    """Make ``event`` Faust's current event: table writes take their partition from it.

    ``take_events`` yields a batch outside Faust's per-event context, so without this a
    table write would land on whichever event Faust saw last.
    """
    _current_event.set(weakref.ref(event))


class EventProcessor:
    """Validate, apply and score one micro-batch; publish lists and dead letters."""

    def __init__(
        self,
        settings: Settings,
        recommender: Recommender,
        catalog: Catalog,
        learning: LearningLog,
        users: faust.Table,
        topics: dict[str, faust.TopicT],
    ) -> None:
        self.settings = settings
        self.recommender = recommender
        self.catalog = catalog
        self.learning = learning
        self.users = users
        self.topics = topics
        self.stats: Counter[str] = Counter()
        self._catalog_cursor = 0
        self._learning_cursor = 0
        self._graced: set[str] = set()
        # The artifact the current recommender was built from (None: none existed).
        self.model_version = latest_version(settings.model_dir)

    async def handle(self, batch: Sequence[EventT]) -> None:
        self.follow()
        parsed = [(source, self._parse(source)) for source in batch]
        await self._grace_unknown_items([e for _, e in parsed if isinstance(e, Event)])
        touched: dict[str, Touched] = {}
        applied: dict[int, list[Entry]] = {}
        for source, result in parsed:
            if isinstance(result, Event) and result.item_id not in self.catalog:
                result = InvalidEvent(f"unknown item_id {result.item_id!r} (announce it on the items topic first)")
            if isinstance(result, InvalidEvent):
                await self._dead_letter(source, result)
            else:
                self._apply(result, source, touched, applied)
        await self._publish(touched)
        await self._share(applied)

    async def _grace_unknown_items(self, events: list[Event]) -> None:
        """Wait once per unknown item id before calling it unknown.

        An item announced just before its first event may still be in flight to our
        catalog reader; each new unknown id buys one short wait, never more.
        """
        unknown = {e.item_id for e in events if e.item_id not in self.catalog}
        if not unknown - self._graced:
            return
        await asyncio.sleep(UNKNOWN_ITEM_GRACE_S)
        self.follow()
        if len(self._graced) > GRACE_MEMORY:
            self._graced.clear()
        self._graced |= unknown

    async def reload_if_newer(self) -> None:
        """Swap in a newer model artifact without stopping: the feedback loop's last step.

        Loading, embedding the catalog and replaying the learning log for the new model
        run in a thread, so the stream keeps flowing on the old model; the swap happens
        between batches, and the next batch hands it whatever arrived meanwhile.
        """
        version = latest_version(self.settings.model_dir)
        if version == self.model_version or not uses_artifacts(self.settings.recommender):
            return
        new, catalog_at, learning_at = await asyncio.get_running_loop().run_in_executor(None, self._fresh_model)
        new.carry_over(self.recommender)  # what no log holds (exposure): at the swap, nothing served is lost
        self.recommender, self.model_version = new, version
        self._catalog_cursor, self._learning_cursor = catalog_at, learning_at
        log.info("model reloaded: %s", new.version)
        self.stats["model_reloads"] += 1

    def _fresh_model(self) -> tuple[Recommender, int, int]:
        """A new recommender brought up to the whole catalog and learning log (off the loop)."""
        recommender = make_recommender(self.settings.recommender, RecommenderOptions.of(self.settings))
        return recommender, *self._catch_up(recommender, 0, 0)

    def follow(self) -> None:
        """Hand the recommender the catalog updates and every worker's applied events that
        arrived since the last batch."""
        catalog_at, learning_at = self._catch_up(self.recommender, self._catalog_cursor, self._learning_cursor)
        self.stats["items"] += catalog_at - self._catalog_cursor
        self.stats["learned"] += learning_at - self._learning_cursor
        self._catalog_cursor, self._learning_cursor = catalog_at, learning_at

    def _catch_up(self, recommender: Recommender, catalog_from: int, learning_from: int) -> tuple[int, int]:
        items, catalog_at = self.catalog.updates_since(catalog_from)
        if items:
            recommender.update_items(items)
        learned, learning_at = self.learning.updates_since(learning_from)
        for update in learned:
            recommender.learn(update.user, update.interaction)
        return catalog_at, learning_at

    def _parse(self, source: EventT) -> Event | InvalidEvent:
        self.stats["events_in"] += 1
        try:
            event = parse_event(source.value, max_bytes=self.settings.max_event_bytes)
        except InvalidEvent as exc:
            return exc
        key = source.key.decode("utf-8", "replace") if source.key is not None else None
        if key != event.user_id:
            # State is partitioned by key: a mis-keyed event would land on the wrong partition.
            return InvalidEvent(f"message key {key!r} must equal user_id {event.user_id!r}")
        return event

    async def _dead_letter(self, source: EventT, reason: InvalidEvent) -> None:
        self.stats["dead_lettered"] += 1
        where = f"{source.message.topic}[{source.message.partition}]@{source.message.offset}"
        await self.topics["dlq"].send(key=source.key, value=dead_letter(source.value, str(reason), where))

    def _apply(self, event: Event, source: EventT, touched: dict[str, Touched], applied: dict[int, list[Entry]]) -> None:
        set_current_event(source)
        entry = touched.get(event.user_id)
        state = entry.state if entry else self._load(event.user_id)
        before = state.window[-LEARNING_CONTEXT:]  # what the learning record carries
        offset = source.message.offset
        if not state.apply(event, offset):
            self.stats["duplicates"] += 1
            return
        self.stats["applied"] += 1
        interaction = Interaction(event.item_id, event.event_type, event.ts)
        applied.setdefault(source.message.partition, []).append((offset, interaction, before))
        touched[event.user_id] = Touched(state, event, source)

    async def _share(self, applied: dict[int, list[Entry]]) -> None:
        """Publish what this batch applied, for every worker's item-side learning."""
        for partition, entries in applied.items():
            await self.topics["learning"].send(key=str(partition).encode(), value=encode_batch(partition, entries))

    def _load(self, user_id: str) -> UserState:
        return UserState.from_dict(self.users.get(user_id), self.settings.window)

    async def _publish(self, touched: dict[str, Touched]) -> None:
        if not touched:
            return
        users = list(touched)
        contexts = [touched[u].state.context(u, self.settings.exclude_recent) for u in users]
        vectors = self.recommender.embed(contexts)
        if vectors is not None:
            contexts = [c.with_vector(v) for c, v in zip(contexts, vectors, strict=True)]
        ranked = self.recommender.recommend(contexts, self.settings.k)
        reasons = [self.recommender.explain(c, r) for c, r in zip(contexts, ranked, strict=True)]
        now = time.time()
        for i, user_id in enumerate(users):
            entry = touched[user_id]
            if vectors is not None:
                entry.state.vector = [round(float(x), 5) for x in vectors[i]]
            set_current_event(entry.source)
            self.users[user_id] = entry.state.to_dict()
            message = recommendation_message(
                user_id, ranked[i], entry.event, self.recommender.version, entry.state.events, now, reasons[i]
            )
            await self.topics["recommendations"].send(key=user_id.encode(), value=message)
        self.stats["lists_out"] += len(users)


def build(
    settings: Settings, worker_name: str, recommender: Recommender, catalog: Catalog, learning: LearningLog
) -> tuple[faust.App, EventProcessor]:
    """Wire topics, the users table and the agent into a Faust app."""
    app = create_app(settings, worker_name)
    topics = {
        name: app.topic(topic, partitions=n, key_serializer="raw", value_serializer="raw")
        for name, (topic, n) in topic_specs(settings).items()
    }
    users = app.Table(USERS_TABLE, partitions=settings.partitions)  # user_id -> UserState.to_dict()
    processor = EventProcessor(settings, recommender, catalog, learning, users, topics)
    events = topics["events"]

    @app.agent(events)
    async def process(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max, settings.batch_window_s):
            await processor.handle(batch)

    @app.timer(STATS_EVERY_S)
    async def report() -> None:
        log.info("worker %s: %s", worker_name, dict(processor.stats))

    @app.timer(MODEL_POLL_S)
    async def hot_reload() -> None:
        await processor.reload_if_newer()

    @app.on_rebalance_complete.connect
    async def mark_ready(sender: faust.App, **_: Any) -> None:
        # Tells a supervisor (tests, the demo) that partitions are assigned and recovered.
        ready_marker(settings.data_dir, worker_name).write_text(str(time.time()))

    return app, processor


def run(settings: Settings, worker_name: str, loglevel: str = "info") -> None:
    """Run one worker until SIGTERM/SIGINT: catalog first, then the Faust worker."""
    recommender = initial_recommender(settings.recommender, RecommenderOptions.of(settings))
    catalog, learning = Catalog(), LearningLog()
    readers = [
        catalog.follow(settings.bootstrap_servers, settings.topic_items, name=worker_name),
        learning.follow(settings.bootstrap_servers, settings.topic_learning, name=worker_name),
    ]
    for reader in readers:
        if not reader.wait_caught_up(CATCH_UP_WAIT_S):
            log.warning("%s still loading after %.0f s; starting anyway", reader.topic, CATCH_UP_WAIT_S)
    app, processor = build(settings, worker_name, recommender, catalog, learning)
    processor.follow()
    ready_marker(settings.data_dir, worker_name).parent.mkdir(parents=True, exist_ok=True)
    ready_marker(settings.data_dir, worker_name).unlink(missing_ok=True)
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        for reader in readers:
            reader.stop()
