"""A worker's item-side statistics on disk, with the learning-log position they reflect.

Every `CHECKPOINT_S` the worker pickles its recommender's `item_state` (popularity,
co-occurrence, trending, exposure, ...) together with its host's `Position` (the source
offsets learned, and the ``events.learning`` record to read again from) into one file
in its data dir, written atomically (temporary file, fsync, rename). A worker that
starts gives the statistics to its fresh recommender, and its learning log skips every
record before the position: a restart reads only the log's tail, and each applied event
is still learned exactly once (`streams.learning`). A file of another format or written
for another recommender is ignored: the worker then learns the whole log, as without one.

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
from pathlib import Path

from streamrec.models.base import Recommender
from streamrec.streams.learning import Position

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
    or None if there is no usable checkpoint (nothing is loaded then)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        data = pickle.loads(path.read_bytes())  # the worker's own file, in its own data dir
    except Exception:
        log.warning("unreadable checkpoint %s: learning the whole log", path, exc_info=True)
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("kind") != kind(name, recommender):
        log.warning("checkpoint %s is not for %s: learning the whole log", path, kind(name, recommender))
        return None
    try:
        recommender.load_item_state(data["state"])
    except ValueError as exc:  # statistics of differently built models (an experiment's arms)
        log.warning("checkpoint %s does not fit: %s; learning the whole log", path, exc)
        return None
    position: Position = data["position"]
    log.info("item statistics restored from %s: reading events.learning from offset %d", path, position.record)
    return position
