"""What ``/dashboard`` shows, gathered by the server: topics it reads and workers it scrapes.

`Feed` follows ``events``, ``events.dlq`` and ``recommendations`` (from the start, as
every reader here does) and keeps only what the page needs, bounded: produce rates
from record timestamps, the latest dead-letter reasons, the items of the recent lists,
and per user the last few events and lists. `WorkerScrape` reads the workers'
Prometheus endpoints and sums them. `Dashboard.stats` is one JSON snapshot of both,
with a short history for the charts; it starts the feed's readers the first time it is
asked, so a server whose dashboard nobody opens reads no extra topic.

Reasons are plain text already (the contract strips markup); the page still inserts
every string as text, never as HTML.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from streamrec.settings import Settings
from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.contracts import InvalidEvent, parse_event, parse_recommendation

log = logging.getLogger(__name__)

# Rates are averaged over this many seconds of record timestamps: smooth, still live.
RATE_WINDOW_S = 10.0
# Top items and coverage are taken over this many of the latest lists.
RECENT_LISTS = 1000
TOP_ITEMS = 10
LATEST_REASONS = 10
# Per user: this many recent events and lists, for at most this many users (least
# recently active forgotten first): bounded memory whatever the traffic.
USER_EVENTS = 20
USER_LISTS = 5
MAX_USERS = 10_000
# Models counted in lists (each hot reload names a new version, any producer of lists can
# name more): the least recently listed forgotten first.
MAX_MODELS = 20
# One snapshot per this interval at most: polling pages share it, workers are scraped once.
SNAPSHOT_EVERY_S = 1.0
# Chart history: this many snapshots (5 minutes at one per second).
HISTORY = 300
SCRAPE_TIMEOUT_S = 1.0
# Dead-letter reasons are shown cut to this length.
REASON_CHARS = 300
QUANTILES = (0.5, 0.99)


class Reader(Protocol):
    def stop(self) -> None: ...


Watch = Callable[[Settings, "Feed"], list[Reader]]
Fetch = Callable[[str], str]


def watch_topics(settings: Settings, feed: Feed) -> list[Reader]:
    """Readers feeding ``feed`` from the events, dead-letter and recommendations topics."""
    handlers = {
        settings.topic_events: feed.on_events,
        settings.topic_dlq: feed.on_dead_letters,
        settings.topic_recommendations: feed.on_lists,
    }
    return [TopicReader(settings.bootstrap_servers, topic, h, "dashboard").start() for topic, h in handlers.items()]


def fetch_text(url: str) -> str:
    response = httpx.get(url, timeout=SCRAPE_TIMEOUT_S)
    response.raise_for_status()
    return response.text


class Rate:
    """Records per second over the last `RATE_WINDOW_S` of their timestamps.

    >>> r = Rate()
    >>> for t in (100.0, 100.5, 101.0, 109.0): r.add(t)
    >>> r.per_second(now=110.0), r.total
    (0.4, 4)
    """

    def __init__(self) -> None:
        self._seconds: deque[list[int]] = deque()  # [whole second, count], oldest first
        self.total = 0

    def add(self, at: float) -> None:
        second = int(at)
        self.total += 1
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1][1] += 1
        elif not self._seconds or self._seconds[-1][0] < second:
            self._seconds.append([second, 1])
        # an out-of-order record older than the newest second is counted in the total only

    def per_second(self, now: float | None = None) -> float:
        since = (time.time() if now is None else now) - RATE_WINDOW_S
        while self._seconds and self._seconds[0][0] < since:
            self._seconds.popleft()
        return sum(count for _, count in self._seconds) / RATE_WINDOW_S


@dataclass
class UserView:
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=USER_EVENTS))
    lists: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=USER_LISTS))


class Feed:
    """What the topics say, bounded; reader threads write, `snapshot` reads under a lock."""

    def __init__(self, max_event_bytes: int = 4096) -> None:
        self.max_event_bytes = max_event_bytes
        self._lock = threading.Lock()
        self.events, self.dead, self.lists = Rate(), Rate(), Rate()
        self.reasons: deque[dict[str, Any]] = deque(maxlen=LATEST_REASONS)
        self.recent: deque[tuple[str, ...]] = deque(maxlen=RECENT_LISTS)
        self.models: Counter[str] = Counter()
        self.users: OrderedDict[str, UserView] = OrderedDict()

    def on_events(self, records: list[Record]) -> None:
        for record in records:
            try:
                event = parse_event(record.value, max_bytes=self.max_event_bytes)
            except InvalidEvent:
                continue  # the worker dead-letters it; the page shows it from events.dlq
            at = record.timestamp_ms / 1000.0
            with self._lock:
                self.events.add(at)
                self._user(event.user_id).events.append(
                    {"item_id": event.item_id, "event_type": event.event_type, "produced_at": at}
                )

    def on_dead_letters(self, records: list[Record]) -> None:
        for record in records:
            try:
                letter = orjson.loads(record.value)
                reason, source = str(letter["reason"]), str(letter.get("source", ""))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                reason, source = "unreadable dead letter", ""
            with self._lock:
                self.dead.add(record.timestamp_ms / 1000.0)
                self.reasons.appendleft(
                    {"reason": reason[:REASON_CHARS], "source": source[:REASON_CHARS], "at": record.timestamp_ms / 1000}
                )

    def on_lists(self, records: list[Record]) -> None:
        for record in records:
            try:
                message = parse_recommendation(record.value)
            except InvalidEvent:
                continue
            items = [{"item_id": i.item_id, "score": i.score, "reason": i.reason} for i in message.items]
            with self._lock:
                self.lists.add(record.timestamp_ms / 1000.0)
                self.recent.append(tuple(i.item_id for i in message.items))
                self.models[message.model] = self.models.pop(message.model, 0) + 1  # newest last
                if len(self.models) > MAX_MODELS:
                    del self.models[next(iter(self.models))]
                self._user(message.user_id).lists.appendleft(
                    {
                        "generated_at": message.generated_at,
                        "user_events": message.user_events,
                        "model": message.model,
                        "items": items,
                    }
                )

    def _user(self, user_id: str) -> UserView:
        view = self.users.pop(user_id, None) or UserView()
        self.users[user_id] = view  # most recently active last
        if len(self.users) > MAX_USERS:
            self.users.popitem(last=False)
        return view

    def snapshot(self, user_id: str | None, catalog_size: int, now: float) -> dict[str, Any]:
        with self._lock:
            counts = Counter(item for items in self.recent for item in items)
            view = self.users.get(user_id) if user_id else None
            return {
                "events_per_s": self.events.per_second(now),
                "events_total": self.events.total,
                "dead_letters_per_s": self.dead.per_second(now),
                "dead_letters_total": self.dead.total,
                "latest_reasons": list(self.reasons),
                "lists_per_s": self.lists.per_second(now),
                "lists_total": self.lists.total,
                "top_items": [{"item_id": i, "lists": n} for i, n in counts.most_common(TOP_ITEMS)],
                "coverage": {
                    "lists": len(self.recent),
                    "distinct_items": len(counts),
                    "catalog_items": catalog_size,
                    "share": len(counts) / catalog_size if catalog_size else None,
                },
                "models_in_lists": dict(self.models),
                "user": None
                if user_id is None
                else {
                    "user_id": user_id,
                    "events": list(reversed(view.events)) if view else [],
                    "lists": list(view.lists) if view else [],
                },
            }


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a Prometheus histogram, from cumulative ``(le, count)`` pairs,
    interpolated linearly inside the bucket as ``histogram_quantile`` does.

    >>> round(quantile(0.5, [(0.1, 2.0), (0.2, 6.0), (float("inf"), 8.0)]), 6)
    0.15
    >>> quantile(0.99, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    True
    """
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower  # beyond the largest finite bound: report that bound
            return lower + (le - lower) * (rank - below) / (count - below) if count > below else le
        lower, below = le, count
    return lower


@dataclass
class Sample:
    """The workers' metrics summed over workers at one moment."""

    at: float
    counters: Counter[str] = field(default_factory=Counter)
    buckets: Counter[float] = field(default_factory=Counter)  # freshness histogram, cumulative per le
    workers: list[dict[str, Any]] = field(default_factory=list)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    lag: dict[str, float] = field(default_factory=dict)

    def freshness(self, since: Sample | None) -> dict[str, float | None]:
        """Quantiles (s) of the events since ``since`` (all of them if none came since)."""
        recent = sorted((le, float(n - (since.buckets[le] if since else 0))) for le, n in self.buckets.items())
        if not recent or recent[-1][1] <= 0:
            recent = sorted((le, float(n)) for le, n in self.buckets.items())
        return {f"p{round(q * 100)}": quantile(q, recent) for q in QUANTILES}


WORKER_COUNTERS = (
    "streamrec_worker_events",
    "streamrec_worker_events_applied",
    "streamrec_worker_events_duplicate",
    "streamrec_worker_lists_published",
    "streamrec_worker_model_reloads",
    "streamrec_worker_dead_lettered",
)
WORKER_GAUGES = ("streamrec_worker_parked_events", "streamrec_worker_learning_lag_records")


class WorkerScrape:
    """Scrapes and sums the workers' metrics endpoints."""

    def __init__(self, urls: Iterable[str], fetch: Fetch = fetch_text) -> None:
        self.urls = [u for u in urls if u]
        self.fetch = fetch

    def sample(self, now: float) -> Sample:
        sample = Sample(now)
        for url in self.urls:
            worker: dict[str, Any] = {"url": url, "up": False}
            try:
                families = list(text_string_to_metric_families(self.fetch(url)))
            except (httpx.HTTPError, ValueError) as exc:
                worker["error"] = str(exc)[:REASON_CHARS]
            else:
                worker["up"] = True
                self._add(sample, worker, families)
            sample.workers.append(worker)
        return sample

    @staticmethod
    def _add(sample: Sample, worker: dict[str, Any], families: Iterable[Any]) -> None:
        for family in families:
            for s in family.samples:
                if family.name in WORKER_COUNTERS and s.name.endswith("_total"):
                    sample.counters[family.name] += s.value
                    if "reason" in s.labels:
                        sample.dead_by_reason[s.labels["reason"]] += s.value
                elif family.name in WORKER_GAUGES:
                    sample.counters[family.name] += s.value
                elif s.name == "streamrec_event_to_list_seconds_bucket":
                    sample.buckets[float(s.labels["le"])] += s.value
                elif s.name == "streamrec_worker_model_info":
                    worker["model"] = s.labels
                elif s.name == "streamrec_worker_model_loaded_timestamp_seconds":
                    worker["model_loaded_at"] = s.value
                elif s.name == "streamrec_worker_consumer_lag_records":
                    sample.lag[s.labels["partition"]] = s.value
                elif s.name == "streamrec_worker_end_offsets_trusted":
                    worker["lag_trusted"] = bool(s.value)


class Dashboard:
    """Snapshots for the page: `stats` (JSON-ready), at most one per `SNAPSHOT_EVERY_S`."""

    def __init__(
        self,
        settings: Settings,
        catalog_size: Callable[[], int],
        watch: Watch = watch_topics,
        fetch: Fetch = fetch_text,
        experiments: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.experiments = experiments
        self.catalog_size = catalog_size
        self.feed = Feed(settings.max_event_bytes)
        self.scrape = WorkerScrape(settings.worker_metrics_urls.split(","), fetch)
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._watch = watch
        self._readers: list[Reader] | None = None
        self._samples: deque[Sample] = deque(maxlen=2)
        self._lock = threading.Lock()

    def stats(self, user_id: str | None = None, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self._lock:
            self._start()
            if not self._samples or now - self._samples[-1].at >= SNAPSHOT_EVERY_S:
                self._samples.append(self.scrape.sample(now))
                self.history.append(self._point(now))
            workers = self._workers()
        feed = self.feed.snapshot(user_id, self.catalog_size(), now)
        experiments = self.experiments() if self.experiments else {"experiments": {}, "history": []}
        return {"now": now, **feed, "workers": workers, "history": list(self.history), "experiments": experiments}

    def stop(self) -> None:
        for reader in self._readers or []:
            reader.stop()

    def _start(self) -> None:
        """Start reading the topics the first time a page asks (a broker error: retried next time)."""
        if self._readers is not None:
            return
        try:
            self._readers = self._watch(self.settings, self.feed)
        except Exception as exc:
            log.warning("dashboard cannot follow its topics yet: %s", exc)

    def _point(self, now: float) -> dict[str, Any]:
        """One point of the charts: rates from the topics and from the workers' counters."""
        last, before = self._samples[-1], (self._samples[0] if len(self._samples) > 1 else None)
        point: dict[str, Any] = {
            "at": now,
            "events_per_s": self.feed.events.per_second(now),
            "dead_letters_per_s": self.feed.dead.per_second(now),
            **last.freshness(before),
        }
        if before is not None and last.at > before.at:
            elapsed = last.at - before.at
            point["processed_per_s"] = (
                max(0.0, last.counters["streamrec_worker_events"] - before.counters["streamrec_worker_events"])
                / elapsed
            )
        return point

    def _workers(self) -> dict[str, Any]:
        last = self._samples[-1]
        return {
            "endpoints": last.workers,
            "totals": dict(last.counters),
            "dead_letters_by_reason": dict(last.dead_by_reason),
            "consumer_lag": last.lag,
            "freshness_s": {k: v for k, v in self.history[-1].items() if k.startswith("p")},
        }
