"""Event and item logs: JSONL, CSV, the built-in MovieLens-100K, and the broker's topics.

`LogSource` is the one place that picks a log by where it lives (every command that
reads a log takes one). Every reader streams (yields one record at a time) so large logs never sit in memory.

Event files: JSONL with the ``events`` contract per line, or CSV with the header
``user_id,item_id,event_type,ts[,event_id]``. Item files: JSONL with the ``items``
contract, or CSV with ``item_id,title[,description,category,available]``.

MovieLens-100K is read from the installed ``recbole`` wheel (its licence forbids
redistribution, so it is never copied into this repository). Ratings map to event
types by `RATING_TO_EVENT`: 5 stars = purchase, 4 = click, 1-3 = view.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from streamrec.settings import Settings
from streamrec.streams.contracts import InvalidEvent, encode_event, encode_item, parse_event, parse_item, validate_event
from streamrec.streams.drift import DriftStream, drift_stream
from streamrec.types import EVENT_TYPES, Event, Item

RATING_TO_EVENT = {5: "purchase", 4: "click", 3: "view", 2: "view", 1: "view"}
ML100K = "ml-100k"
DRIFT = "synthetic-drift"
DATASETS = (ML100K, DRIFT)
# The built-in drift stream (`streams.drift`): big enough for a few trainer rounds in its
# scored 20% (4000 events, past the second drift), small enough to train in minutes.
DRIFT_EVENTS, DRIFT_USERS, DRIFT_ITEMS, DRIFT_SEED = 20_000, 300, 600, 7
# Longest a topic read-back may take (100k events take ~1 s).
TOPIC_READ_TIMEOUT_S = 600.0
# Item-popularity skew of synthetic logs; ~1 is what real catalogs show.
SYNTHETIC_ZIPF = 1.0


@dataclass(frozen=True)
class LogSource:
    """Where a log of events and its item catalog come from: a built-in ``dataset``,
    files (``events_file``, ``items_file``), or the topics of the ``broker`` (the
    feedback loop's log). Exactly one kind is given; ``limit`` keeps the first N events.

    `events` and `items` read afresh on every call, so a source can be iterated twice.

    >>> LogSource(dataset="ml-100k", limit=3).name
    'ml-100k'
    >>> LogSource(dataset="ml-100k", events_file="e.csv")
    Traceback (most recent call last):
    ...
    ValueError: give one source of events: a dataset, files, or the broker
    """

    dataset: str | None = None
    events_file: str | Path | None = None
    items_file: str | Path | None = None
    broker: Settings | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        kinds = (self.dataset is not None, bool(self.events_file or self.items_file), self.broker is not None)
        if sum(kinds) != 1:
            raise ValueError("give one source of events: a dataset, files, or the broker")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")

    @property
    def name(self) -> str:
        """How reports name the log."""
        if self.broker is not None:
            return f"topic {self.broker.topic_events}"
        return self.dataset or str(self.events_file)

    def events(self) -> Iterator[Event]:
        """The events in time order (files stream; a dataset or topic is read whole first)."""
        if self.dataset == DRIFT:
            events: Iterable[Event] = drift_dataset().events
        elif self.dataset is not None:
            events = movielens_events(self.dataset)
        elif self.broker is not None:
            events = topic_events(self.broker.bootstrap_servers, self.broker.topic_events)
        elif self.events_file:
            events = read_events(self.events_file)
        else:
            raise ValueError("no event file given")
        return itertools.islice(events, self.limit)

    def items(self) -> Iterable[Item]:
        """The item catalog (the latest version of each item, for the broker)."""
        if self.dataset == DRIFT:
            return drift_dataset().items
        if self.dataset is not None:
            return movielens_items(self.dataset)
        if self.broker is not None:
            return topic_items(self.broker.bootstrap_servers, self.broker.topic_items)
        if self.items_file:
            return read_items(self.items_file)
        raise ValueError("no item file given")


def read_events(path: str | Path) -> Iterator[Event]:
    """Yield the events of a JSONL or CSV file, validated, in file order."""
    path = Path(path)
    is_csv = _is_csv(path)
    for line_no, row in _rows(path):
        try:
            yield validate_event(_csv_event(row) if is_csv else row)
        except InvalidEvent as exc:
            raise InvalidEvent(f"{path}:{line_no}: {exc}") from None


def read_items(path: str | Path) -> Iterator[Item]:
    """Yield the items of a JSONL or CSV file."""
    path = Path(path)
    for line_no, row in _rows(path):
        if "available" in row and isinstance(row["available"], str):
            row["available"] = row["available"].strip().lower() not in ("0", "false", "no")
        try:
            yield parse_item(orjson.dumps(row))
        except InvalidEvent as exc:
            raise InvalidEvent(f"{path}:{line_no}: {exc}") from None


def write_jsonl(path: str | Path, records: Iterable[Event | Item]) -> int:
    """Write records as JSONL; returns how many were written."""
    n = 0
    with open(path, "wb") as out:
        for record in records:
            out.write((encode_event(record) if isinstance(record, Event) else encode_item(record)) + b"\n")
            n += 1
    return n


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    return _csv_rows(path) if _is_csv(path) else _jsonl_rows(path)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as lines:
        for line_no, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield line_no, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InvalidEvent(f"{path}:{line_no}: malformed JSON: {exc}") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.DictReader(f), 2):
            yield line_no, {k: v for k, v in row.items() if v not in (None, "")}


def _csv_event(row: dict) -> dict:
    if "ts" in row:
        try:
            row["ts"] = float(row["ts"])
        except ValueError:
            raise InvalidEvent(f"ts: {row['ts']!r} is not a number") from None
    return row


def dataset_dir(name: str = ML100K) -> Path:
    """Folder of a dataset shipped inside the installed ``recbole`` package."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"dataset {name!r} needs recbole: pip install --no-deps recbole")
    folder = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing from the installed recbole package")
    return folder


def movielens_events(name: str = ML100K) -> list[Event]:
    """MovieLens ratings as events, sorted by time (ties keep file order)."""
    events = [
        Event(
            user_id=row["user_id:token"],
            item_id=row["item_id:token"],
            event_type=RATING_TO_EVENT[int(float(row["rating:float"]))],
            ts=float(row["timestamp:float"]),
            event_id=f"{row['user_id:token']}-{row['item_id:token']}",
        )
        for row in _recbole_rows(dataset_dir(name) / f"{name}.inter")
    ]
    events.sort(key=lambda e: e.ts)
    return events


def movielens_items(name: str = ML100K) -> list[Item]:
    """MovieLens movies as items: title (with year) and genres as the category."""
    items = []
    for row in _recbole_rows(dataset_dir(name) / f"{name}.item"):
        year = row.get("release_year:token", "")
        title = row["movie_title:token_seq"] + (f" ({year})" if year else "")
        genres = row.get("class:token_seq", "").split()
        items.append(Item(row["item_id:token"], title, category=", ".join(genres)))
    return items


def drift_dataset() -> DriftStream:
    """The ``synthetic-drift`` dataset: `streams.drift.drift_stream` with a fixed seed (the same every call)."""
    return drift_stream(DRIFT_EVENTS, DRIFT_USERS, DRIFT_ITEMS, DRIFT_SEED)


def _recbole_rows(path: Path) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            yield dict(zip(header, line.rstrip("\n").split("\t"), strict=False))


def synthetic_catalog(n_items: int) -> list[Item]:
    """Items ``s0..s{n-1}`` in a few text topics (for scale tests and benchmarks)."""
    topics = ("space opera", "kitchen knives", "jazz piano", "trail running", "board games")
    return [Item(f"s{i}", f"{topics[i % len(topics)]} #{i}", category=topics[i % len(topics)]) for i in range(n_items)]


def synthetic_events(n_events: int, n_users: int, n_items: int, seed: int = 7, t0: float = 1.7e9) -> Iterator[Event]:
    """Zipf-popular items, uniformly random users, one event per second of log time."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** SYNTHETIC_ZIPF
    items = rng.choice(n_items, size=n_events, p=weights / weights.sum())
    users = rng.integers(0, n_users, size=n_events)
    types = rng.choice(3, size=n_events, p=(0.7, 0.25, 0.05))
    for n in range(n_events):
        yield Event(f"su{users[n]}", f"s{items[n]}", EVENT_TYPES[types[n]], t0 + n, f"se{seed}-{n}")


def topic_events(bootstrap: str, topic: str) -> list[Event]:
    """Every valid event on ``topic`` so far (the feedback loop's training log), in time order.

    Invalid records are skipped: the worker has already dead-lettered them.
    """
    from streamrec.streams.broadcast import read_all

    events = []
    for record in read_all(bootstrap, topic, TOPIC_READ_TIMEOUT_S, name="training"):
        try:
            events.append(parse_event(record.value))
        except InvalidEvent:
            continue
    events.sort(key=lambda e: e.ts)
    return events


def topic_items(bootstrap: str, topic: str) -> list[Item]:
    """The catalog announced on ``topic`` so far: the latest version of each item."""
    from streamrec.streams.broadcast import read_all
    from streamrec.streams.catalog import Catalog

    catalog = Catalog()
    catalog.on_records(read_all(bootstrap, topic, TOPIC_READ_TIMEOUT_S, name="catalog"))
    catalog.refresh()
    return list(catalog.items.values())
