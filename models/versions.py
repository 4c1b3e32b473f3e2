"""Model versions on disk: ``<model_dir>/<version>/``, named so that order = creation order.

A version is the UTC creation time ``YYYYMMDDTHHMMSSffffffZ`` plus a two-digit counter
(``-00``, ``-01`` ... if that instant is taken), so the latest version is simply the
greatest complete one. A version folder is complete once its ``manifest.json`` exists;
writers build it in a hidden temporary folder and rename it into place, so readers never
see half of one. Standard library only: the worker polls this, and ``--help``, the HTTP
server and the stack use it without loading torch.

>>> import datetime as dt, tempfile
>>> root = Path(tempfile.mkdtemp())
>>> version = free_version(root, dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
>>> (root / version).mkdir(); (root / version / MANIFEST).write_text("{}")
2
>>> version, latest_version(root)
('20260102T000000000000Z-00', '20260102T000000000000Z-00')
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

MANIFEST = "manifest.json"


def latest_version(model_dir: str | Path) -> str | None:
    """Greatest complete version under ``model_dir`` (None if there is none)."""
    root = Path(model_dir)
    if not root.is_dir():
        return None
    versions = [p.name for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()]
    return max(versions, default=None)


def free_version(root: Path, now: dt.datetime) -> str:
    """The version name for something created at ``now`` that no folder under ``root`` has."""
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    counter = 0
    while (root / f"{stamp}-{counter:02d}").exists():
        counter += 1
    return f"{stamp}-{counter:02d}"
