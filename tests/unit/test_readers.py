"""Readers that no record can stop: bad records are skipped and counted, the rest read."""

from __future__ import annotations

import orjson
import pytest

from streamrec.streams.broadcast import Record, TopicReader
from streamrec.streams.catalog import Catalog
from streamrec.streams.learning import LearningLog, encode_batch
from streamrec.types import Interaction


def records(*values: bytes) -> list[Record]:
    return [Record(None, value, 0, 0, offset) for offset, value in enumerate(values)]


def test_a_handler_failing_on_one_record_costs_that_record_only() -> None:
    seen: list[bytes] = []

    def handler(batch: list[Record]) -> None:
        if any(r.value == b"bad" for r in batch):
            raise RuntimeError("cannot use it")
        seen.extend(r.value for r in batch)

    reader = TopicReader("127.0.0.1:9", "items", handler, name="unit")  # never started: no broker needed
    reader._handle(records(b"a", b"bad", b"c"))
    reader._handle(records(b"d"))
    assert seen == [b"a", b"c", b"d"] and reader.skipped == 1
    assert not reader.alive and not reader.caught_up
    reader.stop()


def test_the_catalog_skips_and_counts_items_it_cannot_use() -> None:
    catalog = Catalog()
    catalog.on_records(
        records(
            b'{"item_id": "a", "title": "A"}',
            b"{",
            b"",
            b'{"item_id": "b"}',
            b"\xff",
            b'{"item_id": "c", "title": "C"}',
        )
    )
    catalog.refresh()
    assert sorted(catalog.items) == ["a", "c"] and catalog.skipped == 4


def test_forged_learning_records_cannot_hide_later_genuine_ones() -> None:
    log = LearningLog(partitions=4)
    view = Interaction("i", "view", 1.0)
    log.on_records(
        records(
            orjson.dumps({"p": 0, "e": [[10**15, "forged", 0, 1.0, []]]}),  # far ahead of every real offset
            orjson.dumps({"p": 7, "e": [[1, "i", 0, 1.0, []]]}),  # no such partition
            orjson.dumps({"p": 0, "e": [[2, "i", 0, 1.0, []], [3, "i", "view", 1.0, []]]}),  # one bad entry: all out
            encode_batch(0, [(5, view, []), (6, view, [])]),
            encode_batch(0, [(5, view, [])]),  # a redelivery
        )
    )
    learned, _ = log.updates_since(0)
    assert [u.interaction.item_id for u in learned] == ["forged", "i", "i"]
    assert log.skipped == 2 and log.redelivered == 1


@pytest.mark.parametrize("recommender", ["cooccurrence", "fusion"])
def test_a_host_forgets_what_its_model_learned(tmp_path, recommender: str) -> None:
    """No host keeps the learned log: a hot reload takes the item statistics over from the
    model it replaces, and a restart loads them from a checkpoint (tests/unit/test_checkpoint.py)."""
    from streamrec.models.registry import RecommenderOptions, initial_recommender
    from streamrec.settings import Settings
    from streamrec.streams.model_host import ModelHost

    settings = Settings.load(env={}, overrides={"data_dir": str(tmp_path), "recommender": recommender})
    learning = LearningLog()
    model = initial_recommender("cooccurrence", RecommenderOptions.of(settings))  # what learns is the same
    host = ModelHost(settings, model, Catalog(), learning)
    for offset in range(3):
        learning.on_records(records(encode_batch(0, [(offset, Interaction("i", "view", 1.0), [])])))
        host.follow()
    assert host.stats["learned"] == 3 and learning.updates_since(3) == ([], 3)
    assert host.position.learned[0].ranges == [[0, 2]]
    with pytest.raises(ValueError, match="forgotten"):
        learning.updates_since(0)
