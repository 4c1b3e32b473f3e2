import itertools
from pathlib import Path

import pytest

from streamrec.streams.contracts import InvalidEvent
from streamrec.streams.sources import (
    RATING_TO_EVENT,
    movielens_events,
    movielens_items,
    read_events,
    read_items,
    write_jsonl,
)
from streamrec.types import Event, Item


def test_jsonl_and_csv_events(tmp_path: Path) -> None:
    events = [Event("u1", "i1", "view", 1.0, "a"), Event("u2", "i2", "purchase", 2.5)]
    write_jsonl(tmp_path / "e.jsonl", events)
    assert list(read_events(tmp_path / "e.jsonl")) == events
    (tmp_path / "e.csv").write_text("user_id,item_id,event_type,ts,event_id\nu1,i1,view,1,a\nu2,i2,purchase,2.5,\n")
    assert list(read_events(tmp_path / "e.csv")) == events


def test_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("user_id,item_id,event_type,ts\nu1,i1,view,1\nu1,i1,like,2\n")
    with pytest.raises(InvalidEvent, match=r"e.csv:3: event_type"):
        list(read_events(tmp_path / "e.csv"))


def test_items_from_csv(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title,category,available\n1,Heat,Crime,false\n2,Up,,\n")
    assert list(read_items(tmp_path / "items.csv")) == [Item("1", "Heat", "", "Crime", False), Item("2", "Up")]


def test_movielens_100k_from_the_installed_package() -> None:
    events = movielens_events()
    assert len(events) == 100_000
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))
    assert {e.event_type for e in events} == set(RATING_TO_EVENT.values())
    assert len({e.user_id for e in events}) == 943
    items = movielens_items()
    assert len(items) == 1682 and items[0].title == "Toy Story (1995)" and "Animation" in items[0].category
