"""The server's list store on a real broker: its partitions only, and a restart reads only what is new."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streamrec.infra.stack import Stack
from streamrec.serving.lists import LatestLists
from streamrec.settings import Settings
from streamrec.streams.broadcast import TopicReader
from streamrec.streams.kafka import partition_for
from streamrec.streams.replay import produce_raw
from tests.unit.test_list_store import a_list

pytestmark = pytest.mark.integration
FOLLOWED = {0, 1}
CATCH_UP_S = 60.0


def read(settings: Settings, path: Path) -> LatestLists:
    """A store at ``path`` brought up to date from its own offsets, on `FOLLOWED` partitions."""
    lists = LatestLists(path)
    reader = TopicReader(
        settings.bootstrap_servers,
        settings.topic_recommendations,
        lists.on_records,
        "resume-test",
        partitions=FOLLOWED,
        start=lists.offsets(),
    ).start()
    assert reader.wait_caught_up(CATCH_UP_S)
    reader.stop()
    return lists


def test_a_store_follows_its_partitions_and_resumes_from_its_offsets(settings: Settings, tmp_path: Path) -> None:
    with Stack(settings, workers=0) as stack:
        s = stack.settings
        users = [f"u{n}" for n in range(40)]
        mine = {u for u in users if partition_for(u.encode(), s.partitions) in FOLLOWED}
        produce_raw(s, s.topic_recommendations, [(u, a_list(u, "a")) for u in users])
        lists = read(s, tmp_path / "lists")
        assert {u for u in users if lists.get(u)} == mine and set(lists.offsets()) == FOLLOWED
        lists.close()

        produce_raw(s, s.topic_recommendations, [(u, a_list(u, "b")) for u in users[:10]])
        lists = read(s, tmp_path / "lists")
        updated = mine & set(users[:10])
        assert lists.consumed == len(updated) and len(lists) == len(mine)  # only the new records were read
        assert {u for u in mine if orjson.loads(lists.get(u) or b"")["items"][0]["item_id"] == "b"} == updated
        lists.close()
