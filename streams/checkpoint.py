"""A worker's item-side statistics on disk, with the learning-log position they reflect.

Every `CHECKPOINT_S` the worker pickles its recommender's `item_state` (popularity,
co-occurrence, trending, exposure, ...) together with its host's `Position` (the source
offsets learned, and the ``events.learning`` record to read again from) into one file
in its data dir, written atomically (temporary file, fsync, rename). A worker that
starts gives the statistics to its fresh recommender, and its learning log skips every
record before the position: a restart reads only the log's tail, and each applied event
is still learned exactly once (`streams.learning`). A file that cannot be used (of another
format or recommender, truncated, or hand-made with other types) is ignored with its reason,
and the recommender keeps its fresh statistics: the worker then learns the whole log, as
without one, instead of failing at every restart.

**Trust.** Unpickling runs whatever code the file names: the data dir must be writable by
the worker's user alone (as its RocksDB state next to it, which it trusts just as much).
Never point ``data_dir`` at a folder others can write to.

>>> import tempfile
>>> from streamrec.models.popularity import Popularity
>>> from streamrec.types import Interaction, UserContext
>>> folder, model = tempfile.mkdtemp(), Popularity()
>>> model.learn(UserContext("u"), Interaction("a", "view", 0.0))
>>> _ = save(folder, "popularity", model, Position(record=3))
>>> restored = Popularity()
>>> load(folder, "popularity", restored).record, restored.recommend([UserContext("v")], 1)
(3, [[('a', 1.0)]])
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

from streamrec.models.base import Recommender
from streamrec.streams.learning import Offsets, Position

log = logging.getLogger(__name__)

FILE = "item_state.pickle"
FORMAT = 1
# How often a worker saves: a restart replays at most this much of the learning log
# (~30 s of traffic), and pickling statistics of a few thousand items costs milliseconds.
CHECKPOINT_S = 30.0


def kind(name: str, recommender: Recommender) -> str:
    """What a checkpoint is valid for: the configured name and the class serving it
    (a transformer worker serves co-occurrence until it has an artifact)."""
    return f"{name}:{type(recommender).__name__}"


def dumps(name: str, recommender: Recommender, position: Position) -> bytes:
    """The checkpoint's bytes: pickled on the caller's thread, so they are one consistent state."""
    data = {"format": FORMAT, "kind": kind(name, recommender), "state": recommender.item_state(), "position": position}
    return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)


def write(folder: str | Path, data: bytes) -> Path:
    """Replace ``<folder>/FILE`` with ``data`` atomically; returns its path."""
    path = Path(folder) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return path


def save(folder: str | Path, name: str, recommender: Recommender, position: Position) -> Path:
    return write(folder, dumps(name, recommender, position))


async def save_off_loop(folder: str | Path, name: str, recommender: Recommender, position: Position) -> Path:
    """`save`, pickling on the event loop (between batches: a consistent state) and
    writing in a thread."""
    data = dumps(name, recommender, position)
    return await asyncio.get_running_loop().run_in_executor(None, write, folder, data)


def load(folder: str | Path, name: str, recommender: Recommender) -> Position | None:
    """Give ``recommender`` the statistics saved in ``folder``; the position they reflect,
    or None if there is no usable checkpoint (nothing is loaded then: all or nothing)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    fresh = recommender.item_state()
    try:
        position = _restore(path, name, recommender, fresh)
    except Exception as exc:  # whatever a foreign or damaged file raises: never a crash loop
        recommender.load_item_state(fresh)
        log.warning("checkpoint %s not used (%s): learning the whole log", path, exc, exc_info=True)
        return None
    log.info("item statistics restored from %s: reading events.learning from offset %d", path, position.record)
    return position


def _restore(path: Path, name: str, recommender: Recommender, fresh: Mapping[str, Any]) -> Position:
    """Load the checkpoint at ``path`` into ``recommender``; `ValueError` if it does not fit."""
    data = pickle.loads(path.read_bytes())  # the worker's own file, in its own data dir (see Trust)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("kind") != kind(name, recommender):
        raise ValueError(f"not a checkpoint of {kind(name, recommender)}")
    if not fits(fresh, data.get("state")):
        raise ValueError("its statistics are not shaped as this model's")
    position = data.get("position")
    if not is_position(position):
        raise ValueError(f"position {position!r:.80} is not a learning-log position")
    recommender.load_item_state(data["state"])
    return position


def fits(fresh: Any, saved: Any) -> bool:
    """Whether ``saved`` has the shape of ``fresh``, a fresh model's `item_state`: the same
    type at every level, and through state mappings (plain dicts a fresh model fills:
    statistic names, sources, arms) and tuples the same keys and lengths. A fresh value of
    None (a time not seen yet) takes anything; a fresh model's data dicts are empty.

    >>> fresh = {"items": {}, "clock": None, "base": {"n": 0}}
    >>> fits(fresh, {"items": {"a": 1}, "clock": 5.0, "base": {"n": 3}}), fits(fresh, {"items": {}, "clock": 1})
    (True, False)
    >>> fits(fresh, {"items": "garbage", "clock": None, "base": {"n": 3}})
    False
    """
    if fresh is None:
        return True
    if type(saved) is not type(fresh):
        return False
    if type(fresh) is dict and fresh:
        return saved.keys() == fresh.keys() and all(fits(fresh[key], saved[key]) for key in fresh)
    if type(fresh) is tuple:
        return len(saved) == len(fresh) and all(map(fits, fresh, saved))
    return True


def is_position(position: Any) -> TypeGuard[Position]:
    """Whether ``position`` is a `Position` as `Position.took` builds them.

    >>> is_position(Position(record=3)), is_position(Position(record=-1)), is_position({"record": 3})
    (True, False, False)
    """
    return (
        isinstance(position, Position)
        and type(position.record) is int
        and position.record >= 0
        and isinstance(position.learned, dict)
        and all(type(p) is int and isinstance(o, Offsets) for p, o in position.learned.items())
    )
