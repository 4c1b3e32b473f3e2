"""Item-side learning shared by every worker, exact however partitions are split.

Users are partitioned across workers, but item statistics (popularity, co-occurrence,
trending) must see every user's events. So each worker publishes what it *applied* to
the single-partition ``events.learning`` topic, one record per (micro-batch, source
partition), and every worker follows the whole topic and lets its recommender learn
from it. Each entry carries its source offset: a partition is owned by one worker at a
time and processed in offset order, so anything at or below the highest offset already
learned for that partition is a redelivery (after a crash or a rebalance) and is dropped.
Each applied event is therefore learned exactly once, by every worker.

Record (JSON)::

    {"p": source partition, "e": [[offset, item_id, type, ts, [[item_id, type, ts], ...]], ...]}

where ``type`` indexes `EVENT_TYPES` and the inner list is the user's window just
before the event (its newest `CONTEXT` entries), which sequence-aware learners need.

>>> learned = LearningLog()
>>> batch = encode_batch(0, [(5, Interaction("b", "click", 2.0), [Interaction("a", "view", 1.0)])])
>>> r = Record(None, batch, 0, 0, 0)
>>> learned.on_records([r, r])  # the same record twice: a redelivery
>>> [(u.interaction.item_id, [w.item_id for w in u.user.window]) for u in learned.updates_since(0)[0]]
[('b', ['a'])]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from streamrec.types import Interaction, UserContext
from streamrec.streams.broadcast import Record, UpdateLog
from streamrec.types import EVENT_TYPES, EVENT_TYPE_INDEX

log = logging.getLogger(__name__)

# Window entries sent along with each event: what sequence-aware learners look back on.
CONTEXT = 5

Entry = tuple[int, Interaction, Sequence[Interaction]]


@dataclass(frozen=True, slots=True)
class Learned:
    """One applied event: the user's window before it, and the event."""

    user: UserContext
    interaction: Interaction


def encode_batch(partition: int, entries: Sequence[Entry]) -> bytes:
    """The ``events.learning`` record for one source partition's applied events."""
    return orjson.dumps({"p": partition, "e": [[offset, *_pack(i), [_pack(w) for w in window[-CONTEXT:]]]
                                                for offset, i, window in entries]})


def _pack(i: Interaction) -> list:
    return [i.item_id, EVENT_TYPE_INDEX[i.event_type], i.ts]


def _unpack(packed: list) -> Interaction:
    return Interaction(packed[0], EVENT_TYPES[packed[1]], packed[2])


class LearningLog(UpdateLog[Learned]):
    """Every applied event of every partition, once each, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.watermarks: dict[int, int] = {}
        self.redelivered = 0

    def parse(self, record: Record) -> list[Learned]:
        try:
            batch = orjson.loads(record.value)
            partition, entries = batch["p"], batch["e"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring malformed learning record at offset %d", record.offset)
            return []
        learned = []
        for offset, item_id, type_index, ts, window in entries:
            if offset <= self.watermarks.get(partition, -1):
                self.redelivered += 1
                continue
            self.watermarks[partition] = offset
            context = UserContext("", tuple(_unpack(w) for w in window))
            learned.append(Learned(context, _unpack([item_id, type_index, ts])))
        return learned
