"""streams/metrics.py: names, units and values as a Prometheus scraper reads them."""

from __future__ import annotations

import dataclasses
import gc
import time
import weakref
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamrec.infra.broker import free_port
from streamrec.streams.metrics import REASONS, WORKER_STATS, ServerMetrics, WorkerMetrics, reason_class
from streamrec.streams.worker import freeze_heap
from tests.unit.test_processor import Fixture


def scraped(metrics: WorkerMetrics | ServerMetrics) -> dict[str, float]:
    """Sample name with labels -> value, parsed back from the exposition text."""
    text = generate_latest(metrics.registry).decode()
    return {
        s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("unknown item_id 'i9': parking full (10 events wait for their items)", "unknown_item"),
        ("message key b'u2' must equal user_id 'u1' (its UTF-8 bytes)", "misrouted"),
        ("arrived on partition 1 but key b'u1' hashes to partition 3 of 4 with murmur2", "misrouted"),
        ("payload is 9000 bytes, over the 4096-byte limit", "too_large"),
        ("processing failed: InjectedFault: injected fault on event e1", "processing_failed"),
        ("malformed JSON: unexpected character", "malformed"),
        ("empty record (no value)", "malformed"),
        ("event: event_type must be one of view, click, purchase", "invalid"),
    ],
)
def test_dead_letter_reasons_fall_into_few_classes(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected
    assert expected in REASONS


def test_worker_metrics_export_counts_histograms_and_model() -> None:
    metrics = WorkerMetrics()
    processor_stats = Counter(events_in=7, applied=5, duplicates=1, lists_out=4, parked=1)
    host_stats = Counter(model_reloads=2, learned=9)
    metrics.watch(
        [processor_stats, host_stats],
        parked=lambda: 3,
        learning_lag=lambda: 2,
        lags=lambda: {0: 4, 2: 0},
        trusted=False,
    )
    with metrics.batch(7):
        pass
    metrics.published([100.0, None, 100.5], now=100.6)
    metrics.dead_lettered("malformed JSON: oops")
    metrics.model_swapped("transformer", "v0003", at=1234.5)
    processor_stats["events_in"] += 3  # read at scrape time: no second count to keep in step

    got = scraped(metrics)
    assert got["streamrec_worker_events_total"] == 10
    assert got["streamrec_worker_events_applied_total"] == 5
    assert got["streamrec_worker_events_duplicate_total"] == 1
    assert got["streamrec_worker_lists_published_total"] == 4
    assert got["streamrec_worker_model_reloads_total"] == 2
    assert got["streamrec_worker_dead_lettered_total|reason=malformed"] == 1
    assert got["streamrec_worker_dead_lettered_total|reason=unknown_item"] == 0  # every class exported
    assert got["streamrec_worker_batch_size_events_count"] == 1 and got["streamrec_worker_batch_size_events_sum"] == 7
    assert got["streamrec_worker_batch_duration_seconds_count"] == 1
    assert got["streamrec_event_to_list_seconds_count"] == 2  # the event without a timestamp is not measured
    assert got["streamrec_event_to_list_seconds_sum"] == pytest.approx(0.7)
    assert got["streamrec_event_to_list_seconds_bucket|le=0.2"] == 1
    assert got["streamrec_worker_model_info|artifact=v0003|model=transformer"] == 1
    assert got["streamrec_worker_model_loaded_timestamp_seconds"] == 1234.5
    assert got["streamrec_worker_consumer_lag_records|partition=0"] == 4
    assert got["streamrec_worker_end_offsets_trusted"] == 0
    assert got["streamrec_worker_parked_events"] == 3
    assert got["streamrec_worker_learning_lag_records"] == 2
    exported = {name.partition("|")[0] for name in got}
    assert {name + "_total" for name, _ in WORKER_STATS.values()} <= exported


def test_two_workers_in_one_process_do_not_collide() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.dead_lettered("empty record (no value)")
    assert second.value("streamrec_worker_dead_lettered_total", reason="malformed") == 0


def test_server_metrics_count_lists_as_counters_and_time_routes() -> None:
    class Lists:
        consumed, malformed = 12, 2

        def __len__(self) -> int:
            return 5

    metrics = ServerMetrics(Lists())
    metrics.answered("/v1/users/{user_id}/recommendations", 200, 0.003)
    metrics.list_age.observe(4.0)
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE streamrec_lists_consumed_total counter" in text
    got = scraped(metrics)
    assert got["streamrec_lists_consumed_total"] == 12 and got["streamrec_users_with_lists"] == 5
    route = "route=/v1/users/{user_id}/recommendations"
    assert got[f"streamrec_http_request_duration_seconds_count|{route}"] == 1
    assert got[f"streamrec_http_requests_total|{route}|status=200"] == 1
    assert got["streamrec_served_list_age_seconds_bucket|le=10.0"] == 1


def test_worker_metrics_are_served_over_http() -> None:
    metrics, port = WorkerMetrics(), free_port()
    metrics.dead_lettered("empty record (no value)")
    assert metrics.serve(port, "127.0.0.1")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'streamrec_worker_dead_lettered_total{reason="malformed"} 1.0' in text
    assert not WorkerMetrics().serve(port, "127.0.0.1")  # taken: logged, not raised


def test_consumer_lag_is_highwater_minus_the_next_offset_to_read() -> None:
    from faust.types import TP

    from streamrec.streams.faust_compat import consumer_lags

    events = [TP("events", p) for p in range(3)]

    class Consumer:
        _read_offset = {events[0]: 9, events[1]: 0}

        def assignment(self) -> set:
            return {*events, TP("other", 0)}

        def highwater(self, tp: TP) -> int:
            return 10

    class App:
        consumer = Consumer()

    assert consumer_lags(App(), "events") == {0: 0, 1: 9, 2: 10}

    class Starting:
        @property
        def consumer(self) -> None:
            raise RuntimeError("no consumer yet")

    assert consumer_lags(Starting(), "events") == {}


def test_the_processor_records_dead_letters_and_freshness(tmp_path: Path) -> None:
    f = Fixture(tmp_path)
    produced = time.time() - 0.5  # the records' Kafka timestamps: half a second ago
    good = [dataclasses.replace(f.record(user, "i0"), timestamp=produced) for user in ("u1", "u2")]
    f.run(*good, f.record("u3", "i1", value=b"\xff"))
    metrics = f.processor.metrics
    assert metrics.value("streamrec_worker_dead_lettered_total", reason="malformed") == 1
    assert metrics.value("streamrec_event_to_list_seconds_count") == 2
    assert (metrics.value("streamrec_event_to_list_seconds_sum") or 0) / 2 >= 0.5


def test_garbage_collections_are_timed_by_generation() -> None:
    metrics = WorkerMetrics()
    metrics.time_gc()
    try:
        gc.collect(1)
        gc.collect()
    finally:
        gc.callbacks.pop()
    values = scraped(metrics)
    assert values["streamrec_worker_gc_pause_seconds_count|generation=1"] >= 1
    assert values["streamrec_worker_gc_pause_seconds_count|generation=2"] >= 1
    assert values["streamrec_worker_gc_pause_seconds_sum|generation=2"] > 0


def test_a_frozen_heap_still_frees_a_replaced_model_at_the_next_freeze() -> None:
    """`freeze_heap` exempts live objects from collections; the next one (after a reload)
    must still free the old objects' reference cycles, or every reload would leak."""

    class Model:
        def __init__(self) -> None:
            self.itself = self  # a reference cycle: only the cyclic collector frees it

    model = Model()
    gone = weakref.ref(model)
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
        del model
        gc.collect()
        assert gone() is not None  # frozen: the collector leaves it alone
        freeze_heap()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_store_memory_sums_what_rocksdb_holds_per_kind_and_skips_closed_databases(tmp_path: Path) -> None:
    from rocksdict import Rdict

    from streamrec.streams.metrics import STORE_MEMORY

    dbs = [Rdict(str(tmp_path / f"p{n}")) for n in range(3)]
    for n, db in enumerate(dbs[:2]):
        for key in range(1000 * (n + 1)):
            db[key] = "x" * 100
    dbs[2].close()
    metrics = WorkerMetrics()
    metrics.watch([], parked=lambda: 0, learning_lag=lambda: 0, lags=dict, trusted=True, databases=lambda: dbs)
    held = {kind: scraped(metrics)[f"streamrec_worker_store_memory_bytes|kind={kind}"] for kind in STORE_MEMORY}
    one = dbs[0].property_int_value(STORE_MEMORY["memtables"])
    both = one + dbs[1].property_int_value(STORE_MEMORY["memtables"])
    assert held["memtables"] == both > one > 200_000  # 3,000 values of 100 B, in two stores
    for db in dbs[:2]:
        db.close()
