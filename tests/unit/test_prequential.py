"""Prequential scoring on tiny hand-made timelines whose right answers are known."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import orjson
import pytest

from streamrec.infra.backtest import Gate, ListBook
from streamrec.models import metrics
from streamrec.models.prequential import Context, Produced, Published, long_tail, over_time, prequential, summarize
from streamrec.streams.broadcast import Record
from streamrec.types import Event, Item


def ev(user: str, item: str, ordinal: int, at: float, ts: float | None = None) -> Produced:
    return Produced(user, item, ts if ts is not None else at, ordinal, produced_at=at)


def pub(user: str, items: str, user_events: int, at: float) -> Published:
    return Published(user, tuple(items), user_events, published_at=at)


def test_scores_against_last_list_published_before_the_event() -> None:
    events = [ev("u", "c", 2, at=10.0), ev("u", "x", 3, at=20.0)]
    lists = [pub("u", "abc", 1, at=1.0), pub("u", "xyz", 1, at=5.0), pub("u", "qrs", 2, at=12.0)]
    first, second = prequential(events, lists)
    assert (first.seen, first.rank) == (tuple("xyz"), metrics.MISS)  # "abc" was superseded
    assert (second.seen, second.rank, second.seen_events) == (tuple("qrs"), metrics.MISS, 2)


def test_list_published_after_the_event_does_not_count() -> None:
    # The list that would have been a hit (rank 1) is published 1 ms after the event.
    events = [ev("u", "a", 2, at=10.0)]
    lists = [pub("u", "zzz", 1, at=9.0), pub("u", "abc", 1, at=10.001)]
    (outcome,) = prequential(events, lists)
    assert outcome.seen == tuple("zzz")
    assert outcome.rank == metrics.MISS


def test_list_published_at_the_same_instant_does_not_count() -> None:
    (outcome,) = prequential([ev("u", "a", 1, at=10.0)], [pub("u", "abc", 0, at=10.0)])
    assert outcome.seen is None and outcome.rank == metrics.MISS


def test_users_without_a_list_are_misses_and_counted_separately() -> None:
    events = [ev("new", "a", 1, at=1.0), ev("old", "b", 3, at=2.0)]
    lists = [pub("old", "ab", 2, at=0.5), pub("other", "a", 1, at=0.1)]
    outcomes = prequential(events, lists)
    assert [o.rank for o in outcomes] == [metrics.MISS, 2]
    summary = summarize(outcomes, Context(catalog=["a", "b"], train_counts=Counter(a=3, b=1)))
    assert summary["no_list"] == 1
    assert summary["hr@10"] == pytest.approx(0.5)
    assert summary["mrr@10"] == pytest.approx(0.25)
    assert summary["ndcg@10"] == pytest.approx(0.5 / math.log2(3))


def test_other_users_lists_are_never_used() -> None:
    (outcome,) = prequential([ev("u", "a", 1, at=5.0)], [pub("v", "a", 1, at=1.0)])
    assert outcome.seen is None


def test_latency_is_to_the_first_list_including_the_event() -> None:
    # Events 2 and 3 of u are coalesced in one list (user_events=3); event 4 never gets one.
    events = [ev("u", "a", 2, at=1.0), ev("u", "b", 3, at=1.004), ev("u", "c", 4, at=3.0)]
    lists = [pub("u", "x", 1, at=0.5), pub("u", "y", 1, at=1.010), pub("u", "z", 3, at=1.020)]
    outcomes = prequential(events, lists)
    assert [round(o.latency_s * 1000, 3) if o.latency_s is not None else None for o in outcomes] == [20.0, 16.0, None]
    summary = summarize(outcomes, Context(catalog=["a"], train_counts=Counter(a=1)))
    assert summary["never_included"] == 1
    assert summary["latency_p50_ms"] == pytest.approx(18.0)


def test_exposure_counts_one_impression_per_scored_event_with_a_list() -> None:
    events = [ev("u", "a", 2, at=1.0), ev("v", "c", 2, at=2.0), ev("w", "c", 1, at=3.0)]
    lists = [pub("u", "ab", 1, at=0.1), pub("v", "ab", 1, at=0.2)]
    context = Context(catalog=["a", "b", "c", "d"], train_counts=Counter(a=8, b=1, c=1), categories={})
    summary = summarize(prequential(events, lists), context, ks=(10,))
    assert summary["coverage@10"] == pytest.approx(0.5)
    assert summary["tail_share@10"] == pytest.approx(0.5)  # head = {a}; b is tail
    assert summary["arp@10"] == pytest.approx(4.5)


def test_over_time_splits_by_event_time() -> None:
    events = [ev("u", "a", n + 2, at=float(n), ts=100.0 * n) for n in range(4)]
    lists = [pub("u", "ab", 1, at=-1.0)]
    rows = over_time(prequential(events, lists), Context(["a", "b"], Counter(a=1)), n_windows=2)
    assert [row["events"] for row in rows] == [2, 2]
    assert rows[0]["start_ts"] == 0.0 and rows[-1]["end_ts"] == 300.0


def test_long_tail_orders_by_training_popularity() -> None:
    outcomes = prequential([ev("u", "c", 2, at=1.0)], [pub("u", "cb", 1, at=0.0)])
    tail = long_tail(outcomes, Context(["a", "b", "c"], Counter(a=3, b=1)), k=10)
    assert tail["items"] == ["a", "b", "c"]
    assert tail["train_share"] == [0.75, 0.25, 0.0]
    assert tail["exposure_share"] == [0.0, 0.5, 0.5]
    assert tail["test_share"] == [0.0, 0.0, 1.0]


def test_new_metrics_match_hand_computation() -> None:
    popularity = Counter(a=6, b=2)
    assert metrics.arp([["a", "b"], ["b"]], popularity, k=2) == pytest.approx((4 + 2) / 2)
    # N + |I| = 8 + 3: p(a) = 7/11, p(c) = 1/11 (never seen in training)
    expected = (-math.log2(7 / 11) - math.log2(1 / 11)) / 2
    assert metrics.novelty([["a", "c"]], popularity, catalog_size=3, k=2) == pytest.approx(expected)
    features = metrics.category_sets(
        [Item("a", "A", category="Action, Drama"), Item("b", "B", category="Drama"), Item("c", "C")]
    )
    assert metrics.intra_list_diversity([["a", "b", "c"]], features, k=3) == pytest.approx((0.5 + 1 + 1) / 3)


# --- The replay gate that makes "the list the user saw" the one after their previous event


def _record(user: str, user_events: int) -> Record:
    value = orjson.dumps({"user_id": user, "items": [], "user_events": user_events})
    return Record(user.encode(), value, timestamp_ms=0, partition=0, offset=0)


def test_gate_holds_a_user_until_their_list_arrives_and_lets_others_pass() -> None:
    book = ListBook()
    gate = Gate(book, in_flight=4, lookahead=10, stall_timeout_s=60)
    log = [Event("u", "a", "view", 1.0), Event("u", "b", "view", 2.0), Event("v", "c", "view", 3.0)]
    order = gate.order([(e, n) for e, n in zip(log, (1, 2, 1), strict=True)])
    assert next(order).item_id == "a"
    assert next(order).item_id == "c"  # u's second event waits for the list of the first
    book.on_records([_record("u", 1)])
    assert next(order).item_id == "b"


def test_gate_with_one_in_flight_is_lockstep_in_log_order() -> None:
    book = ListBook()
    gate = Gate(book, in_flight=1, lookahead=10, stall_timeout_s=60)
    log = [Event(u, f"i{n}", "view", float(n)) for n, u in enumerate("uvu")]
    order = gate.order([(e, n) for e, n in zip(log, (1, 1, 2), strict=True)])
    assert next(order).item_id == "i0"
    threading.Timer(0.1, book.on_records, [[_record("u", 1)]]).start()
    started = time.monotonic()
    assert next(order).item_id == "i1"  # v waits for u's list although v has none pending
    assert time.monotonic() - started >= 0.09
