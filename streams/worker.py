"""The worker process: a Faust app whose agent feeds ``events`` to an `EventProcessor`.

This module is the wiring only: the Faust app and its settings, the topics, the
RocksDB-backed users table, the agent, its timers, and `run`. What happens to a batch
is in streams/processor.py, the model it is scored with in streams/model_host.py, and
the patches on Faust internals in streams/faust_compat.py.
"""

from __future__ import annotations

import gc
import logging
import os
import ssl
import time
from typing import Any

import faust
from faust.types import EventT

from streamrec.settings import Settings
from streamrec.streams import checkpoint
from streamrec.streams.catalog import Catalog
from streamrec.streams.faust_compat import (
    consumer_lags,
    guard_fetch_holes,
    hold,
    set_current_event,
    settle,
    store_databases,
    use_fetch_wait,
)
from streamrec.streams.learning import LearningLog
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_host import ModelHost, build_recommender, served
from streamrec.streams.processor import Delivery, EventProcessor, fault_injector
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
# How often parked events are re-checked against the catalog: well under the time an
# item takes to reach a catalog reader, so a parked event waits little longer than it.
PARK_CHECK_S = 0.1
CATCH_UP_WAIT_S = 30.0
# RocksDB memory per partition's store, bounded: Faust's defaults allow 3 x 64 MB of
# memtables and a 2 GB block cache per store. With 2 x 16 MB + 64 MB, a 4-partition
# worker's stores stay under ~400 MB (streamrec_worker_store_memory_bytes shows them
# fill up to it); over 1M events of 632k users (bench/bench_scale.py --parts worker) the
# worker's RSS levelled off once they had, and a user's state took ~600 B on disk
# against 813 with the defaults.
STORE_OPTIONS = {"write_buffer_size": 16 << 20, "max_write_buffer_number": 2, "block_cache_size": 64 << 20}
# Tests set this to make the processor fail on marked events (see `fault_injector`).
FAULT_ENV = "STREAMREC_INJECT_FAULT"
# EX_SOFTWARE: processing failed in a way dead-lettering could not contain.
EXIT_FATAL = 70


class FaustPort:
    """The processor's `Port` on a Faust app: its topics, producer and events' acks."""

    def __init__(self, app: faust.App, topics: dict[str, faust.TopicT]) -> None:
        self.app = app
        self.topics = topics

    async def send(self, role: str, key: bytes | None, value: bytes) -> None:
        await self.topics[role].send(key=key, value=value)

    async def flush(self) -> None:
        await self.app.producer.flush()

    def enter(self, delivery: Delivery) -> None:
        set_current_event(delivery.handle)

    def settle(self, delivery: Delivery) -> None:
        settle(delivery.handle)


def create_app(settings: Settings, worker_name: str) -> faust.App:
    """A Faust app for one worker process (all workers share the consumer group)."""
    use_fetch_wait(settings.fetch_wait_ms)
    guard_fetch_holes()
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
        broker_credentials=broker_credentials(settings),
    )


def broker_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's form of the security settings every confluent-kafka client gets from
    `streamrec.streams.kafka.client_config`: TLS for ``*SSL``, SASL for ``SASL_*``."""
    protocol = settings.kafka_security_protocol
    tls = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=tls,
        )
    return faust.SSLCredentials(tls) if tls is not None else None


def delivery(event: EventT) -> Delivery:
    """The processor's view of a Faust event (a null value reads as empty bytes)."""
    message = event.message
    return Delivery(
        event.key, event.value or b"", message.topic, message.partition, message.offset, event, message.timestamp
    )


async def or_exit(work: Any) -> None:
    """Await ``work``; if it raises, exit at once so that a restart resumes from the
    committed offsets (held events are never committed, so nothing is skipped)."""
    try:
        await work
    except Exception:
        log.critical(
            "processing failed beyond dead-lettering; exiting for a restart from committed offsets", exc_info=True
        )
        logging.shutdown()
        os._exit(EXIT_FATAL)


def build(settings: Settings, worker_name: str, host: ModelHost) -> tuple[faust.App, EventProcessor]:
    """Wire topics, the users table, the agent and its timers into a Faust app."""
    app = create_app(settings, worker_name)
    topics = {
        name: app.topic(topic, partitions=n, key_serializer="raw", value_serializer="raw")
        for name, (topic, n) in topic_specs(settings).items()
    }
    # user_id -> UserState.to_dict(); Faust pops keys from the options it is given: a copy.
    users = app.Table(USERS_TABLE, partitions=settings.partitions, options=dict(STORE_OPTIONS))
    fault = fault_injector(os.environ.get(FAULT_ENV, ""))
    metrics = WorkerMetrics()
    processor = EventProcessor(settings, host, users, FaustPort(app, topics), fault, metrics)
    metrics.watch(
        [processor.stats, host.stats],
        parked=lambda: len(processor.parking),
        learning_lag=host.learning_lag,
        lags=lambda: consumer_lags(app, settings.topic_events),
        trusted=bool(settings.recovery_check),  # on only where the broker's end offsets are right
        databases=lambda: store_databases(users),
    )
    metrics.model_swapped(host.recommender.version, host.version)

    @app.agent(topics["events"])
    async def process(stream: faust.StreamT) -> None:
        # take_events is Stream's, missing from Faust's StreamT interface.
        async for batch in stream.take_events(settings.batch_max, settings.batch_window_s):  # type: ignore[attr-defined]
            for event in batch:
                hold(event)  # committed when the processor settles it, not when the loop moves on
            with metrics.batch(len(batch)):
                await or_exit(processor.handle([delivery(event) for event in batch]))

    @app.timer(PARK_CHECK_S)
    async def parked() -> None:
        await or_exit(processor.tick())

    @app.timer(STATS_EVERY_S)
    async def report() -> None:
        log.info("worker %s: %s", worker_name, dict(processor.stats + host.stats))

    @app.timer(checkpoint.CHECKPOINT_S)
    async def save_item_state() -> None:
        folder = worker_dir(settings.data_dir, worker_name)
        await checkpoint.save_off_loop(folder, served(settings), host.recommender, host.position)

    @app.timer(MODEL_POLL_S)
    async def hot_reload() -> None:
        if await host.reload_if_newer():
            freeze_heap()
            metrics.model_swapped(host.recommender.version, host.version)

    # Faust's receivers also get `signal=`, which `**_` takes; its type stub wants it named.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: faust.App, revoked: set[Any], **_: Any) -> None:
        processor.revoke({tp.partition for tp in revoked if tp.topic == settings.topic_events})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def mark_ready(sender: faust.App, **_: Any) -> None:
        # Tells a supervisor (tests, the demo) that partitions are assigned and recovered.
        ready_marker(settings.data_dir, worker_name).write_text(str(time.time()))

    return app, processor


def freeze_heap() -> None:
    """Collect once, then exempt every object alive now from later collections (`gc.freeze`).

    A full collection walks every tracked object, and a worker holds millions (torch,
    Faust, the model): each took ~160 ms, a stall of the event loop that freshness p99
    shows. What start-up and a model load built lives as long as the model; unfreezing
    first lets a reload's collection free the replaced model's reference cycles.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def run(settings: Settings, worker_name: str, loglevel: str = "info") -> None:
    """Run one worker until SIGTERM/SIGINT: catalog first, then the Faust worker."""
    recommender = build_recommender(settings, initial=True)
    # Item statistics from the last checkpoint, if any: then only the learning log's tail is read.
    position = checkpoint.load(worker_dir(settings.data_dir, worker_name), served(settings), recommender)
    catalog, learning = Catalog(), LearningLog(settings.partitions, resume=position)
    readers = [
        catalog.follow(settings.bootstrap_servers, settings.topic_items, name=worker_name),
        learning.follow(settings.bootstrap_servers, settings.topic_learning, name=worker_name),
    ]
    for reader in readers:
        if not reader.wait_caught_up(CATCH_UP_WAIT_S):
            log.warning("%s still loading after %.0f s; starting anyway", reader.topic, CATCH_UP_WAIT_S)
    host = ModelHost(settings, recommender, catalog, learning, position)
    host.follow()
    app, processor = build(settings, worker_name, host)
    processor.metrics.time_gc()
    freeze_heap()
    if settings.metrics_port:
        processor.metrics.serve(settings.metrics_port, settings.metrics_host)
    ready_marker(settings.data_dir, worker_name).parent.mkdir(parents=True, exist_ok=True)
    ready_marker(settings.data_dir, worker_name).unlink(missing_ok=True)
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        for reader in readers:
            reader.stop()
