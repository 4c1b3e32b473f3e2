"""The server's list store: persistent, resumable, bounded in memory; the partition setting."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streamrec.serving.lists import LatestLists
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record


def a_list(user: str, item: str, **extra: object) -> bytes:
    message = {
        "user_id": user,
        "items": [{"item_id": item, "score": 1.0, "reason": "<b>bold</b> claim"}],
        "generated_at": 2.0,
        "source_event_ts": 1.0,
        "source_event_id": None,
        "model": "m",
        "user_events": 1,
    }
    return orjson.dumps(message | extra)


def test_lists_and_offsets_survive_a_restart(tmp_path: Path) -> None:
    lists = LatestLists(tmp_path)
    lists.on_records([Record(b"u1", a_list("u1", "a"), 0, 0, 0), Record(b"u2", a_list("u2", "b"), 0, 2, 6)])
    lists.on_records([Record(b"u1", a_list("u1", "c"), 0, 0, 1), Record(None, b"{oops", 0, 1, 3)])
    lists.close()
    again = LatestLists(tmp_path)
    assert again.offsets() == {0: 2, 1: 4, 2: 7}
    assert len(again) == 2 and (again.consumed, again.malformed) == (0, 0)
    assert orjson.loads(again.get("u1") or b"")["items"] == [{"item_id": "c", "score": 1.0, "reason": "bold claim"}]
    again.close()


def test_the_newest_list_of_a_batch_wins_and_a_bad_one_keeps_the_last_good(tmp_path: Path) -> None:
    lists = LatestLists(tmp_path)
    lists.on_records([Record(b"u", a_list("u", "a"), 0, 0, 0), Record(b"u", a_list("u", "b"), 0, 0, 1)])
    lists.on_records([Record(b"u", a_list("u", "x", items=[{"score": 1}]), 0, 0, 2)])
    assert orjson.loads(lists.get("u") or b"")["items"][0]["item_id"] == "b"
    assert (len(lists), lists.consumed, lists.malformed, lists.offsets()) == (1, 2, 1, {0: 3})
    lists.close()


def test_memory_holds_at_most_the_cache_and_rereads_the_rest(tmp_path: Path) -> None:
    lists = LatestLists(tmp_path, cache_users=2)
    lists.on_records([Record(None, a_list(f"u{n}", "a"), 0, 0, n) for n in range(5)])
    served = [lists.get(f"u{n}") for n in range(5)]
    assert all(served) and len(lists._cache) == 2
    lists.on_records([Record(None, a_list("u4", "z"), 0, 0, 5)])  # a cached user's new list replaces the old
    assert orjson.loads(lists.get("u4") or b"")["items"][0]["item_id"] == "z"
    lists.close()


def test_a_temporary_store_is_deleted_on_close() -> None:
    lists = LatestLists()
    lists.on_records([Record(None, a_list("u", "a"), 0, 0, 0)])
    path = lists.path
    lists.close()
    assert not path.exists()


def test_served_partitions_are_checked_against_the_topic() -> None:
    assert Settings(serving_partitions="1,3").served_partitions == frozenset({1, 3})
    with pytest.raises(ValueError, match="beyond 0-3"):
        Settings(serving_partitions="4")
    with pytest.raises(ValueError, match="not a list"):
        Settings(serving_partitions="one")
