"""Every Prometheus metric streamrec exports, defined in one place.

`WorkerMetrics` is what a stream worker exports on its loopback metrics port
(`serve`); `ServerMetrics` is what the HTTP server exports on ``/metrics``. Names follow
Prometheus conventions: ``streamrec_`` prefix, base units (seconds, records, events),
``_total`` for counters (the client library appends it). Each instance has its own
registry, so tests and several apps in one process never collide.

Counters a component already keeps in its ``stats`` (a `collections.Counter`) are
exported from it at scrape time (`StatsCollector`): no second count to keep in step.

>>> m = WorkerMetrics()
>>> m.dead_lettered("unknown item_id 'x': still not in the catalog")
>>> m.value("streamrec_worker_dead_lettered_total", reason="unknown_item")
1.0
"""

from __future__ import annotations

import gc
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Micro-batches hold 1..batch_max (256 by default) events: powers of two cover them.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Batch processing time: ~0.5 ms per event in Faust, so 1 ms (one event) .. 5 s (a stall).
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Event -> list: ~20 ms p50 with a 10 ms fetch wait, ~1 s with Faust's default; 30 s+ is a backlog.
FRESHNESS_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# Pauses of Python's cyclic collector: young generations well under 1 ms, a full
# collection of a large heap tens to hundreds (the event loop stands still meanwhile).
GC_SECONDS_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Age of a served list: fresh (sub-second) to a user idle for a day.
LIST_AGE_BUCKETS = (0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 86400.0)
# HTTP handlers answer from memory (~1 ms) or wait for broker acks (up to http_ack_timeout_s).
HTTP_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Dead-letter reasons (free text from the contract and the processor) grouped into a few
# classes: a label must have few values. First match wins; anything else is "invalid".
REASON_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unknown_item", re.compile(r"unknown item_id")),
    ("misrouted", re.compile(r"message key|arrived on partition")),
    ("too_large", re.compile(r"over the \d+-byte limit")),
    ("processing_failed", re.compile(r"processing failed")),
    ("malformed", re.compile(r"malformed JSON|empty record|undecodable|nested too deeply")),
)
INVALID = "invalid"
REASONS = (*(name for name, _ in REASON_CLASSES), INVALID)

# RocksDB properties behind streamrec_worker_store_memory_bytes{kind}: the parts of a
# store's memory its options bound (streams/worker.py STORE_OPTIONS), and the index and
# filter blocks, which grow with the data.
STORE_MEMORY = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}

# Processor and model-host ``stats`` keys -> exported counter (name without ``_total``, help).
WORKER_STATS: dict[str, tuple[str, str]] = {
    "events_in": ("streamrec_worker_events", "Records read from the events topic"),
    "applied": ("streamrec_worker_events_applied", "Events applied to a user's state"),
    "duplicates": ("streamrec_worker_events_duplicate", "Redelivered events found already applied"),
    "parked": ("streamrec_worker_events_parked", "Events parked until their item reaches the catalog"),
    "lists_out": ("streamrec_worker_lists_published", "Lists published to the recommendations topic"),
    "batch_retries": ("streamrec_worker_batch_retries", "Micro-batches retried after a failure"),
    "model_reloads": ("streamrec_worker_model_reloads", "Newer model artifacts swapped in"),
    "learned": ("streamrec_worker_learned", "Learning-log entries handed to the model"),
}


def reason_class(reason: str) -> str:
    """The class of a dead-letter reason, for the ``reason`` label.

    >>> reason_class("malformed JSON: unexpected character"), reason_class("arrived on partition 3 but ...")
    ('malformed', 'misrouted')
    >>> reason_class("event: field 'user_id' is required")
    'invalid'
    """
    return next((name for name, pattern in REASON_CLASSES if pattern.search(reason)), INVALID)


class StatsCollector(Collector):
    """Exports counts kept in ``stats`` mappings as counters, read at scrape time."""

    def __init__(self, names: Mapping[str, tuple[str, str]], *stats: Mapping[str, int]) -> None:
        self.names = names
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        for key, (name, doc) in self.names.items():
            yield CounterMetricFamily(name, doc, value=sum(s.get(key, 0) for s in self.stats))


class FunctionCounter(Collector):
    """A counter whose value a function returns (the count lives elsewhere)."""

    def __init__(self, name: str, doc: str, value: Callable[[], float]) -> None:
        self.name, self.doc, self.value = name, doc, value

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.doc, value=self.value())


class PartitionLag(Collector):
    """Consumer lag per partition, from a function returning ``{partition: records}``."""

    def __init__(self, lags: Callable[[], Mapping[int, int]]) -> None:
        self.lags = lags

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "streamrec_worker_consumer_lag_records",
            "Records on an assigned events partition not read yet (highwater - position); wrong on the "
            "embedded broker, whose highwaters are wrong: see streamrec_worker_end_offsets_trusted",
            labels=["partition"],
        )
        for partition, lag in sorted(self.lags().items()):
            family.add_metric([str(partition)], lag)
        yield family


class StoreMemory(Collector):
    """What RocksDB itself holds in memory for a table, by kind (`STORE_MEMORY`), summed
    over the databases ``databases()`` returns (one per partition held; each has its own
    block cache). The rest of a worker's resident memory is Python, torch and the model."""

    def __init__(self, databases: Callable[[], Sequence[Any]]) -> None:
        self.databases = databases

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "streamrec_worker_store_memory_bytes",
            "Memory RocksDB holds for the users table, by kind (memtables, block cache, index and filter blocks)",
            labels=["kind"],
        )
        totals = dict.fromkeys(STORE_MEMORY, 0)
        for db in self.databases():
            for kind, prop in STORE_MEMORY.items():
                totals[kind] += store_property(db, prop)
        for kind, total in totals.items():
            family.add_metric([kind], total)
        yield family


def store_property(db: Any, name: str) -> int:
    """An integer property of an open database, 0 if it was closed meanwhile (a rebalance:
    this runs in the metrics thread)."""
    try:
        return int(db.property_int_value(name) or 0)
    except Exception:
        return 0


class Registered:
    """A registry and a way to read one sample back (tests, the doctests)."""

    registry: CollectorRegistry

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


class WorkerMetrics(Registered):
    """A worker's metrics. The processor records batches, dead letters and freshness;
    the wiring attaches what others count (`watch`) and serves it all (`serve`)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._dead = Counter(
            "streamrec_worker_dead_lettered", "Records sent to the dead-letter topic", ["reason"], registry=r
        )
        for reason in REASONS:
            self._dead.labels(reason)  # every class exported from the start, at 0
        self.batch_size = Histogram(
            "streamrec_worker_batch_size_events", "Events per micro-batch", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "streamrec_worker_batch_duration_seconds",
            "Time to process one micro-batch",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.freshness = Histogram(
            "streamrec_event_to_list_seconds",
            "From an event's produce time (its Kafka timestamp) to the publication of the list that includes it",
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "streamrec_worker_gc_pause_seconds",
            "Pauses of Python's cyclic garbage collector, by generation collected",
            ["generation"],
            buckets=GC_SECONDS_BUCKETS,
            registry=r,
        )
        self.model = Info("streamrec_worker_model", "The model being served and its artifact version", registry=r)
        self.model_loaded = Gauge(
            "streamrec_worker_model_loaded_timestamp_seconds",
            "When the current model was loaded (Unix time)",
            registry=r,
        )
        labels = ["experiment", "arm"]
        self.experiment_events = Counter(
            "streamrec_experiment_scored_events", "Events scored against the list their user was shown", labels,
            registry=r,
        )  # fmt: skip
        self.experiment_lists = Counter(
            "streamrec_experiment_impressions", "Scored events whose user had been shown a list", labels, registry=r
        )
        self.experiment_gains = {
            name: Counter(
                f"streamrec_experiment_{name}_sum", f"Sum of {name}@10 over scored events", labels, registry=r
            )
            for name in ("hr", "ndcg", "mrr")
        }
        self.end_offsets_trusted = Gauge(
            "streamrec_worker_end_offsets_trusted",
            "1 if the broker reports true end offsets (Apache Kafka), 0 if not (the embedded broker): lag is "
            "meaningful only when 1",
            registry=r,
        )

    def dead_lettered(self, reason: str) -> None:
        self._dead.labels(reason_class(reason)).inc()

    @contextmanager
    def batch(self, size: int) -> Iterator[None]:
        """Time one micro-batch of ``size`` events."""
        self.batch_size.observe(size)
        with self.batch_seconds.time():
            yield

    def time_gc(self) -> None:
        """Observe every collection of Python's cyclic collector in `gc_pause` (this process's)."""
        started = 0.0

        def on_gc(phase: str, info: dict[str, int]) -> None:
            nonlocal started
            if phase == "start":
                started = time.perf_counter()
            else:
                self.gc_pause.labels(str(info["generation"])).observe(time.perf_counter() - started)

        gc.callbacks.append(on_gc)

    def published(self, produced_at: Iterable[float | None], now: float) -> None:
        """A list went out at ``now`` including events produced at ``produced_at`` (Unix s)."""
        for at in produced_at:
            if at is not None:
                self.freshness.observe(max(0.0, now - at))

    def experiment_scored(
        self, experiment: str, arm: str, events: int, impressions: int, gains: Mapping[str, float]
    ) -> None:
        """``events`` of one user of ``arm`` scored against the list they were shown
        (``impressions`` of them had one), with the sums of their ``gains`` (hr, ndcg, mrr).
        Per-arm sums give rates and means in Prometheus; intervals need per-user data (/v1/experiments)."""
        self.experiment_events.labels(experiment, arm).inc(events)
        self.experiment_lists.labels(experiment, arm).inc(impressions)
        for name, total in gains.items():
            self.experiment_gains[name].labels(experiment, arm).inc(total)

    def model_swapped(self, model: str, artifact: str | None, at: float | None = None) -> None:
        """The worker now scores with ``model`` (its version string), built from ``artifact``."""
        self.model.info({"model": model, "artifact": artifact or "none"})
        self.model_loaded.set(time.time() if at is None else at)

    def watch(
        self,
        stats: Sequence[Mapping[str, int]],
        parked: Callable[[], float],
        learning_lag: Callable[[], float],
        lags: Callable[[], Mapping[int, int]],
        trusted: bool,
        databases: Callable[[], Sequence[Any]] = list,
    ) -> None:
        """Export what the processor and model host count and hold, and what the users
        table's ``databases`` hold in memory."""
        self.registry.register(StatsCollector(WORKER_STATS, *stats))
        self.registry.register(PartitionLag(lags))
        self.registry.register(StoreMemory(databases))
        Gauge(
            "streamrec_worker_parked_events", "Events waiting for their item now", registry=self.registry
        ).set_function(parked)
        Gauge(
            "streamrec_worker_learning_lag_records",
            "Learning-log entries read but not yet handed to the model",
            registry=self.registry,
        ).set_function(learning_lag)
        self.end_offsets_trusted.set(int(trusted))

    def serve(self, port: int, host: str) -> bool:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; False (logged) if the
        port cannot be bound: a worker without its metrics still does its work."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("no metrics endpoint on %s:%d: %s", host, port, exc)
            return False
        return True


class ServerMetrics(Registered):
    """The HTTP server's metrics; ``lists`` is its `LatestLists` (len, consumed, malformed)."""

    def __init__(self, lists: Any) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("streamrec_http_requests", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram(
            "streamrec_http_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=HTTP_SECONDS_BUCKETS,
            registry=r,
        )
        self._answered: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self.events = Counter("streamrec_events_received", "Events posted", ["outcome"], registry=r)
        self.list_age = Histogram(
            "streamrec_served_list_age_seconds",
            "Age of a list when served (now - its generated_at)",
            buckets=LIST_AGE_BUCKETS,
            registry=r,
        )
        Gauge("streamrec_users_with_lists", "Users with a list", registry=r).set_function(lambda: len(lists))
        r.register(FunctionCounter("streamrec_lists_consumed", "Lists read from the topic", lambda: lists.consumed))
        r.register(FunctionCounter("streamrec_lists_malformed", "Lists skipped as invalid", lambda: lists.malformed))

    def answered(self, route: str, status: int, seconds: float) -> None:
        # `labels()` hashes and locks on every call (~7% of a list answer): keep the
        # children; routes and statuses are few, so the map stays small.
        children = self._answered.get((route, status))
        if children is None:
            children = self._answered[(route, status)] = (
                self.requests.labels(route, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)
