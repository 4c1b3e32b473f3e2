"""A worker restarted from a checkpoint reads only the learning log's tail, on a real broker."""

from __future__ import annotations

import pytest

from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.broadcast import Record
from streamrec.streams.learning import LearningLog, Position, encode_batch
from streamrec.streams.replay import produce_raw
from streamrec.types import Interaction

pytestmark = pytest.mark.integration
CATCH_UP_S = 60.0
RECORDS = 6


class Watched(LearningLog):
    """A learning log that remembers the offsets of the records it was handed."""

    def __init__(self, resume: Position | None) -> None:
        super().__init__(resume=resume)
        self.read: list[int] = []

    def on_records(self, records: list[Record]) -> None:
        self.read += [r.offset for r in records]
        super().on_records(records)


def follow(settings: Settings, resume: Position | None) -> Watched:
    log = Watched(resume)
    reader = log.follow(settings.bootstrap_servers, settings.topic_learning, "resume-test")
    assert reader.wait_caught_up(CATCH_UP_S)
    reader.stop()
    log.refresh()
    return log


def test_a_resumed_learning_log_starts_reading_at_its_checkpoint(settings: Settings) -> None:
    with Stack(settings, workers=0) as stack:
        s = stack.settings
        records = [encode_batch(0, [(n, Interaction(f"i{n}", "view", float(n)), ())]) for n in range(RECORDS)]
        produce_raw(s, s.topic_learning, [(None, r) for r in records])

        whole = follow(s, None)
        assert whole.read == list(range(RECORDS))
        tail = follow(s, Position(record=4))
        assert tail.read == [4, 5]  # records before the checkpoint are never fetched
        learned, _ = tail.updates_since(0)
        assert [u.interaction.item_id for u in learned] == ["i4", "i5"]
