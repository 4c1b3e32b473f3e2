"""Model versions on disk: ``<model_dir>/<version>/``, named so that order = creation order.

A version is the UTC creation time ``YYYYMMDDTHHMMSSffffffZ`` plus a two-digit counter
(``-00``, ``-01`` ... if that instant is taken), so the latest version is simply the
greatest complete one. A version folder holds everything a worker loads for that model
(transformer weights, item vocabulary, text vectors, fusion weights, metrics) and is
complete once its ``manifest.json`` exists; writers fill a hidden temporary folder
(`new_version`) and rename it into place, so readers never see half of one. Standard
library only: the worker polls this, and ``--help``, the HTTP server and the stack use
it without loading torch.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> with new_version(root) as draft:
...     _ = (draft.folder / MANIFEST).write_text('{"format": 1}')
>>> latest_version(root) == draft.version, draft.folder.name.startswith(".")
(True, True)
>>> check_format(root / draft.version / MANIFEST, {"format": 9}, supported=1)
Traceback (most recent call last):
...
streamrec.models.versions.UnsupportedFormat: ...manifest.json: format 9, this streamrec reads format 1 (retrain with `streamrec train`)
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
# What `free_version` names: UTC time to the microsecond, then a two-digit counter.
VERSION_NAME = re.compile(r"\d{8}T\d{12}Z-\d{2}")


class UnsupportedFormat(ValueError):
    """A model file in a format this code does not read (written by another streamrec)."""

    def __init__(self, path: str | Path, found: Any, supported: int) -> None:
        self.path, self.found, self.supported = Path(path), found, supported
        super().__init__(
            f"{path}: format {found}, this streamrec reads format {supported} (retrain with `streamrec train`)"
        )


def check_format(path: str | Path, data: Mapping[str, Any], supported: int) -> None:
    """Raise `UnsupportedFormat` unless ``data["format"]`` (read from ``path``) is ``supported``."""
    if data.get("format") != supported:
        raise UnsupportedFormat(path, data.get("format"), supported)


def is_version(name: str) -> bool:
    """Whether ``name`` is a version's folder name.

    >>> is_version("20261202T155149554439Z-00"), is_version("../x"), is_version(".retired-20261202T155149554439Z-00")
    (True, False, False)
    """
    return VERSION_NAME.fullmatch(name) is not None


def has_version(model_dir: str | Path, version: str) -> bool:
    """Whether ``version`` names a complete version under ``model_dir`` (never a path elsewhere).

    >>> has_version("/nowhere", "20261202T155149554439Z-00"), has_version("/", "../etc")
    (False, False)
    """
    return is_version(version) and (Path(model_dir) / version / MANIFEST).is_file()


def latest_version(model_dir: str | Path) -> str | None:
    """Greatest complete version under ``model_dir`` (None if there is none)."""
    root = Path(model_dir)
    if not root.is_dir():
        return None
    versions = [p.name for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()]
    return max(versions, default=None)


def free_version(root: Path, now: dt.datetime) -> str:
    """The version name for something created at ``now`` that no folder under ``root`` has.

    >>> import tempfile
    >>> free_version(Path(tempfile.mkdtemp()), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    '20260102T000000000000Z-00'
    """
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    counter = 0
    while (root / f"{stamp}-{counter:02d}").exists():
        counter += 1
    return f"{stamp}-{counter:02d}"


@dataclass(frozen=True)
class Draft:
    """A version being written: fill ``folder``; it becomes ``<model_dir>/<version>``."""

    version: str
    folder: Path
    created_at: dt.datetime


@contextmanager
def new_version(model_dir: str | Path) -> Iterator[Draft]:
    """A hidden folder to write a new version into, renamed into place on success
    (removed on error). Write ``manifest.json`` in it: a version without one is ignored."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    version = free_version(root, now)
    folder = root / f".tmp-{version}-{os.getpid()}"
    folder.mkdir()
    try:
        yield Draft(version, folder, now)
        os.rename(folder, root / version)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
