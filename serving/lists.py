"""The latest published list per user, as the server keeps it from ``recommendations``.

Every record is validated with the contract model (`parse_recommendation`) once, when it
is consumed: a record the server cannot use (no items, items not a list, an item without
item_id, user_id a list, not JSON...) is skipped and counted, and the user keeps their
last valid list. What is kept is the validated message's canonical JSON, so a request
never validates or re-encodes a list again. Explanations arrive as plain text (the model
strips markup and control characters), so a page can show them as they are.

The lists live in RocksDB; each batch is one atomic write of its lists, the next offset
to read per partition and the user count, so a restarted server resumes where it stopped
(`offsets`) instead of re-reading the topic. Memory holds at most ``cache_users`` lists
(least recently asked for goes first) besides RocksDB's own bounded buffers. With no
``path`` the store is a temporary folder, deleted on `close`.

A store the server cannot use never stops it: one RocksDB cannot open (corrupt, another
layout, a file in its place) is moved aside to ``<path>.unusable-<time>`` (kept for a
look, nothing deleted) and a new one re-reads the topic; unreadable offsets or user count
are dropped, so the topic is re-read (latest wins: nothing doubles) and users recounted.
Only a store another process holds open is an error.

>>> from streamrec.streams.broadcast import Record
>>> lists = LatestLists()
>>> lists.on_records([Record(b"u1", b'{"user_id": ["u1"], "items": []}', 0, 0, 0)])
>>> len(lists), lists.malformed, lists.offsets()
(0, 1, {0: 1})
>>> good = b'{"user_id": "u1", "items": [], "generated_at": 2, "source_event_ts": 1, "source_event_id": null, "model": "m", "user_events": 1, "x": 0}'
>>> lists.on_records([Record(b"u1", good, 0, 0, 1)])
>>> lists.get("u1"), lists.get("u2"), lists.offsets()
(b'{"user_id":"u1","items":[],"generated_at":2.0,"source_event_ts":1.0,"source_event_id":null,"model":"m","user_events":1}', None, {0: 2})
>>> lists.close()
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import cast

from rocksdict import Options, Rdict, WriteBatch

from streamrec.streams.broadcast import Record
from streamrec.streams.contracts import InvalidEvent, RecommendationMessage, parse_recommendation

log = logging.getLogger(__name__)

# Lists kept in memory: ~0.4-0.7 KB each for 10 items, so 100k ≈ 50 MB, the hot users of a
# large site; the rest are one RocksDB read (~10-20 µs) away.
CACHE_USERS = 100_000
META = "meta"  # column family: offsets and the user count, written with the lists they describe
USERS_KEY = b"users"
OFFSET_PREFIX = b"offset:"
# What RocksDB's error says when another process holds the store's lock.
LOCKED = "LOCK"
UNUSABLE = ".unusable-"


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    return options


def _open(path: Path) -> Rdict:
    """The store at ``path``, or a new one there if what is there cannot be opened (moved aside)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        return Rdict(str(path), options=_options(), column_families={META: _options()})
    except Exception as exc:  # rocksdict raises plain Exception: corruption, another layout...
        if LOCKED in str(exc):
            raise RuntimeError(f"list store {path} is open in another process (set lists_dir per server)") from None
        aside = path.with_name(f"{path.name}{UNUSABLE}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        log.warning("list store %s cannot be opened (%s): moved to %s, re-reading the topic", path, exc, aside)
        path.rename(aside)
        path.mkdir(parents=True)
        return Rdict(str(path), options=_options(), column_families={META: _options()})


def _offsets_of(stored: dict[bytes, bytes]) -> dict[int, int]:
    """Partition -> next offset from the meta column; `ValueError` unless all are counts
    (a negative one would read as a special offset: -1 is the end)."""
    offsets = {int(k.removeprefix(OFFSET_PREFIX)): int(v) for k, v in stored.items() if k.startswith(OFFSET_PREFIX)}
    if any(p < 0 or o < 0 for p, o in offsets.items()):
        raise ValueError(f"negative offsets {offsets}")
    return offsets


class LatestLists:
    """user_id -> the canonical JSON of their newest valid `RecommendationMessage`.

    `on_records` runs on a reader thread, `get` on request threads; one lock keeps the
    cache equal to what RocksDB holds. ``on_message`` is also handed every valid list as
    it is read (the experiments board reads their outcomes); after a restart that resumes
    from stored offsets it sees only the lists read since.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        cache_users: int = CACHE_USERS,
        on_message: Callable[[RecommendationMessage], None] | None = None,
    ) -> None:
        self.on_message = on_message
        self._temporary = path is None
        self.path = Path(tempfile.mkdtemp(prefix="streamrec-lists-") if path is None else path)
        self._db = _open(self.path)
        self._meta = self._db.get_column_family_handle(META)
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_users = cache_users
        self._lock = threading.Lock()
        column = self._db.get_column_family(META)
        stored = cast(dict[bytes, bytes], dict(column.items()))  # raw mode: bytes both ways
        del column  # a column family's handle pins the database open
        try:
            self._offsets, self._users = _offsets_of(stored), int(stored.get(USERS_KEY) or 0)
        except ValueError as exc:
            log.warning("list store %s: unreadable offsets or user count (%s); re-reading the topic", self.path, exc)
            self._offsets, self._users = {}, sum(1 for _ in self._db.keys())  # noqa: SIM118 (an Rdict is no dict)
        self.consumed = 0
        self.malformed = 0

    def offsets(self) -> dict[int, int]:
        """Partition -> the next offset to read: where a restarted server resumes."""
        with self._lock:
            return dict(self._offsets)

    def on_records(self, records: list[Record]) -> None:
        """Validate a batch and store its newest valid list per user, with the offsets read."""
        latest: dict[bytes, bytes] = {}
        offsets: dict[int, int] = {}
        for record in records:
            offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
            try:
                message = parse_recommendation(record.value)
            except InvalidEvent as exc:
                self.malformed += 1
                log.debug("skipping list at %d@%d: %s", record.partition, record.offset, exc)
                continue
            latest[message.user_id.encode()] = message.model_dump_json().encode()
            self.consumed += 1
            if self.on_message is not None:
                self.on_message(message)
        self._store(latest, offsets)

    def _store(self, latest: dict[bytes, bytes], offsets: dict[int, int]) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in latest.items():
            batch.put(key, value)
        with self._lock:
            known = cast(list[bytes | None], self._db.get(list(latest))) if latest else []
            new_users = sum(value is None for value in known)
            self._offsets.update({p: max(o, self._offsets.get(p, 0)) for p, o in offsets.items()})
            for partition, offset in self._offsets.items():
                batch.put(OFFSET_PREFIX + str(partition).encode(), str(offset).encode(), self._meta)
            batch.put(USERS_KEY, str(self._users + new_users).encode(), self._meta)
            self._db.write(batch)
            self._users += new_users
            for key in latest:
                self._cache.pop(key.decode(), None)

    def get(self, user_id: str) -> bytes | None:
        """The user's list as canonical JSON bytes, or None if they have none yet."""
        with self._lock:
            value = self._cache.get(user_id)
            if value is not None:
                self._cache.move_to_end(user_id)
                return value
            value = self._db.get(user_id.encode())
            if value is not None:
                self._cache[user_id] = value
                if len(self._cache) > self._cache_users:
                    self._cache.popitem(last=False)
            return value

    def __len__(self) -> int:
        """Users with a list."""
        return self._users

    def disk_bytes(self) -> int:
        """Size of the store's files."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def close(self) -> None:
        with self._lock:
            del self._meta
            self._db.close()
        if self._temporary:
            shutil.rmtree(self.path, ignore_errors=True)
