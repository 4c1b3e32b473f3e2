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


def _stored_meta(path: Path, **meta: bytes) -> None:
    """Overwrite the store's meta column with ``meta`` (raw keys: ``users``, ``offset:<p>``)."""
    from rocksdict import Rdict

    from streamrec.serving.lists import META, _options

    db = Rdict(str(path), options=_options(), column_families={META: _options()})
    column = db.get_column_family(META)
    for key, value in meta.items():
        column[key.replace("_", ":").encode()] = value
    del column
    db.close()


@pytest.mark.parametrize(
    "meta",
    [{"users": b"lots"}, {"offset_0": b"x"}, {"offset_x": b"3"}, {"offset_0": b"-1"}],
    ids=["users", "offset", "partition", "negative offset"],
)
def test_unreadable_offsets_or_count_are_rebuilt_not_a_crash(tmp_path: Path, meta: dict[str, bytes]) -> None:
    lists = LatestLists(tmp_path)
    lists.on_records([Record(b"u1", a_list("u1", "a"), 0, 0, 0), Record(b"u2", a_list("u2", "b"), 0, 1, 4)])
    lists.close()
    _stored_meta(tmp_path, **meta)
    again = LatestLists(tmp_path)
    assert again.offsets() == {} and len(again) == 2  # the topic is read again; users recounted
    again.on_records([Record(b"u1", a_list("u1", "c"), 0, 0, 0)])  # latest wins: nothing doubles
    assert len(again) == 2 and orjson.loads(again.get("u1") or b"")["items"][0]["item_id"] == "c"
    again.close()


@pytest.mark.parametrize("layout", ["another column family", "corrupt", "a file"])
def test_a_store_that_cannot_be_opened_is_moved_aside_and_rebuilt(tmp_path: Path, layout: str) -> None:
    from rocksdict import Rdict

    from streamrec.serving.lists import _options

    store = tmp_path / "lists"
    if layout == "another column family":
        Rdict(str(store), options=_options(), column_families={"old": _options()}).close()
    elif layout == "corrupt":
        store.mkdir()
        (store / "CURRENT").write_text("garbage\n")
    else:
        store.write_text("not a store")
    lists = LatestLists(store)
    lists.on_records([Record(b"u1", a_list("u1", "a"), 0, 0, 0)])
    assert len(lists) == 1 and lists.offsets() == {0: 1}
    lists.close()
    assert [p.name.startswith("lists.unusable-") for p in tmp_path.iterdir() if p != store] == [True]


def test_a_store_open_in_another_server_is_a_clear_error(tmp_path: Path) -> None:
    first = LatestLists(tmp_path)
    with pytest.raises(RuntimeError, match="open in another process"):
        LatestLists(tmp_path)
    first.close()
    assert not [p for p in tmp_path.parent.iterdir() if ".unusable-" in p.name]
