"""Item-side learning shared by every worker, exact however partitions are split.

Users are partitioned across workers, but item statistics (popularity, co-occurrence,
trending) must see every user's events. So each worker publishes what it *applied* to
the single-partition ``events.learning`` topic, one record per (micro-batch, source
partition), and every worker follows the whole topic and lets its recommender learn
from it. Each entry carries its source offset, and every reader remembers the offsets
it has learned per source partition (`Offsets`): an entry seen again (a redelivery
after a crash or a rebalance) is dropped. Each applied event is therefore learned
exactly once, by every worker.

Record (JSON)::

    {"p": source partition, "e": [[offset, item_id, type, ts, [[item_id, type, ts], ...]], ...]}

where ``type`` indexes `EVENT_TYPES` and the inner list is the user's window just
before the event (its newest `CONTEXT` entries), which sequence-aware learners need.

A record that breaks this shape anywhere is rejected whole (`decode_batch` raises), and
because offsets are remembered exactly, not as a high watermark, a forged entry with a
huge offset is learned once at most and cannot make later genuine entries look old.

>>> learned = LearningLog()
>>> batch = encode_batch(0, [(5, Interaction("b", "click", 2.0), [Interaction("a", "view", 1.0)])])
>>> r = Record(None, batch, 0, 0, 0)
>>> learned.on_records([r, r])  # the same record twice: a redelivery
>>> [(u.interaction.item_id, [w.item_id for w in u.user.window]) for u in learned.updates_since(0)[0]]
[('b', ['a'])]
"""

from __future__ import annotations

import copy
import logging
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamrec.streams.broadcast import Record, UpdateLog
from streamrec.streams.contracts import MAX_ID_CHARS
from streamrec.types import EVENT_TYPE_INDEX, EVENT_TYPES, Interaction, UserContext

# Window entries sent along with each event: what sequence-aware learners look back on.
CONTEXT = 5
# Gaps (offsets never learned: dead-lettered or duplicate events) remembered per source
# partition; past this the oldest gap is closed. Parked events fill theirs within
# seconds, so closing gaps this old loses nothing genuine.
MAX_GAPS = 65_536

Entry = tuple[int, Interaction, Sequence[Interaction]]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Learned:
    """One applied event: the user's window before it, and the event; where it came
    from (source partition and offset, and the ``events.learning`` record that carried it)."""

    user: UserContext
    interaction: Interaction
    partition: int = 0
    offset: int = 0
    record: int = 0


def encode_batch(partition: int, entries: Sequence[Entry]) -> bytes:
    """The ``events.learning`` record for one source partition's applied events."""
    return orjson.dumps(
        {
            "p": partition,
            "e": [[offset, *_pack(i), [_pack(w) for w in window[-CONTEXT:]]] for offset, i, window in entries],
        }
    )


def decode_batch(raw: bytes, partitions: int | None = None) -> tuple[int, list[tuple[int, Learned]]]:
    """The source partition and (offset, `Learned`) entries of a record; `ValueError`
    (or `orjson.JSONDecodeError`, one) if any part of it is malformed.

    >>> decode_batch(b'{"p": 0, "e": [[-1, "b", 1, 2.0, []]]}')
    Traceback (most recent call last):
    ...
    ValueError: offset: -1 is not an integer in [0, 9223372036854775808)
    """
    batch = orjson.loads(raw)
    if not isinstance(batch, dict) or not isinstance(batch.get("e"), list):
        raise ValueError("expected {'p': partition, 'e': [entries]}")
    partition = _integer(batch.get("p"), partitions or 2**63, "partition")
    entries = []
    for entry in batch["e"]:
        if not isinstance(entry, list) or len(entry) != 5 or not isinstance(entry[4], list) or len(entry[4]) > CONTEXT:
            raise ValueError(f"malformed entry {entry!r:.80}")
        window = tuple(_unpack(w) for w in entry[4])
        entries.append((_integer(entry[0], 2**63, "offset"), Learned(UserContext("", window), _unpack(entry[1:4]))))
    return partition, entries


def _pack(i: Interaction) -> list:
    return [i.item_id, EVENT_TYPE_INDEX[i.event_type], i.ts]


def _unpack(packed: Any) -> Interaction:
    if not isinstance(packed, list) or len(packed) != 3:
        raise ValueError(f"expected [item_id, type, ts], got {packed!r:.80}")
    item_id, type_index, ts = packed
    if not isinstance(item_id, str) or not 0 < len(item_id) <= MAX_ID_CHARS:
        raise ValueError(f"item_id: {item_id!r:.80} is not an identifier")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or ts < 0:
        raise ValueError(f"ts: {ts!r} is not an epoch time")
    return Interaction(item_id, EVENT_TYPES[_integer(type_index, len(EVENT_TYPES), "type")], float(ts))


def _integer(value: Any, end: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < end:
        raise ValueError(f"{what}: {value!r:.40} is not an integer in [0, {end})")
    return value


class Offsets:
    """A set of offsets kept as sorted disjoint ranges: memory grows with the gaps
    between them, not with their number; past ``max_gaps`` the oldest gap is closed.

    >>> seen = Offsets()
    >>> [seen.add(o) for o in (3, 4, 4, 10**15, 5, 2, 3)]
    [True, True, False, True, True, True, False]
    >>> seen.ranges
    [[2, 5], [1000000000000000, 1000000000000000]]
    """

    def __init__(self, max_gaps: int = MAX_GAPS) -> None:
        self.max_gaps = max_gaps
        self.ranges: list[list[int]] = []  # [first, last], ascending, never adjacent
        self._firsts: list[int] = []

    def add(self, offset: int) -> bool:
        """Remember ``offset``; False if it was already there."""
        i = bisect_right(self._firsts, offset) - 1  # the range starting at or below it
        if i >= 0 and offset <= self.ranges[i][1]:
            return False
        extends_left = i >= 0 and self.ranges[i][1] == offset - 1
        extends_right = i + 1 < len(self.ranges) and self._firsts[i + 1] == offset + 1
        if extends_left and extends_right:
            self.ranges[i][1] = self.ranges[i + 1][1]
            self._remove(i + 1)
        elif extends_left:
            self.ranges[i][1] = offset
        elif extends_right:
            self.ranges[i + 1][0] = self._firsts[i + 1] = offset
        else:
            self.ranges.insert(i + 1, [offset, offset])
            self._firsts.insert(i + 1, offset)
            if len(self.ranges) > self.max_gaps + 1:
                self.ranges[0][1] = self.ranges[1][1]
                self._remove(1)
        return True

    def _remove(self, i: int) -> None:
        del self.ranges[i], self._firsts[i]


class LearningLog(UpdateLog[Learned]):
    """Every applied event of every partition, once each, in arrival order (followers
    drop what they have taken, `UpdateLog.forget_before`).

    ``partitions``: how many partitions ``events`` has (entries claiming another are
    rejected); None accepts any. ``resume``: a checkpoint's position (`Position`): records
    before its ``record`` are skipped unread, and its learned offsets are not learned again.
    """

    def __init__(self, partitions: int | None = None, resume: Position | None = None) -> None:
        super().__init__()
        self.partitions = partitions
        self.learned: dict[int, Offsets] = copy.deepcopy(resume.learned) if resume else {}
        self.skip_below = resume.record if resume else 0
        self.redelivered = 0

    def start_offsets(self) -> dict[int, int]:
        """A resumed log starts reading at its checkpoint's record: a restart reads only the
        tail. (The learning topic has one partition, `streams.topics`, so one offset.)

        >>> LearningLog(resume=Position(record=40)).start_offsets(), LearningLog().start_offsets()
        ({0: 40}, {})
        """
        return {0: self.skip_below} if self.skip_below else {}

    def parse(self, record: Record) -> list[Learned]:
        if record.offset < self.skip_below:
            self._behind_resume(record.offset)
        partition, entries = decode_batch(record.value, self.partitions)
        seen = self.learned.setdefault(partition, Offsets())
        fresh = [
            Learned(learned.user, learned.interaction, partition, offset, record.offset)
            for offset, learned in entries
            if seen.add(offset)
        ]
        self.redelivered += len(entries) - len(fresh)
        return fresh

    def _behind_resume(self, offset: int) -> None:
        """A record before the checkpoint's: the reader starts at that one, so the topic had
        fewer records than the checkpoint names and the client reset the start (the topic was
        recreated or truncated). Skipping records up to the checkpoint's would drop events
        never learned; the learned offsets alone now keep each event learned once."""
        log.warning(
            "%s has a record at %d, before the checkpoint's %d: the log is not the one the checkpoint "
            "saw; learning every record again (events already learned are still dropped)",
            "events.learning",
            offset,
            self.skip_below,
        )
        self.skip_below = 0


@dataclass
class Position:
    """How far a model has learned the log: the source offsets learned per partition,
    and the ``events.learning`` record to read again from (the one that carried the last
    entry learned: entries of a record may be handed over in two goes).

    >>> position = Position()
    >>> position.took([Learned(UserContext(""), Interaction("a", "view", 0.0), 2, 7, 40)])
    >>> position.record, position.learned[2].ranges
    (40, [[7, 7]])
    """

    learned: dict[int, Offsets] = field(default_factory=dict)
    record: int = 0

    def took(self, updates: Sequence[Learned]) -> None:
        """Count ``updates`` as learned."""
        for update in updates:
            self.learned.setdefault(update.partition, Offsets()).add(update.offset)
        if updates:
            self.record = updates[-1].record
