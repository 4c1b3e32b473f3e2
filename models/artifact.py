"""Versioned model artifacts: ``<model_dir>/<version>/{weights.safetensors, manifest.json}``.

A version is the UTC creation time ``YYYYMMDDTHHMMSSffffffZ`` plus a two-digit counter
(``-00``, ``-01`` ... if that instant is taken), so lexicographic order = creation order
and `latest_version` is simply the greatest complete version. An artifact is written to
a hidden temporary folder and renamed into place, so readers never see half of one.

The weights file holds the `SequenceEncoder` state dict and ``item_text`` (the text vectors
of the ID-known items, row 0 = padding), so an artifact scores its items without
re-encoding any text. ``manifest.json`` holds the version, creation time, model config,
item id map (``item_ids[k]`` has ID row ``k + 1``), text model name and metrics.

>>> import tempfile
>>> from streamrec.models.sequence import SequenceConfig, SequenceEncoder
>>> folder = tempfile.mkdtemp()
>>> net = SequenceEncoder(SequenceConfig(n_items=2, text_dim=4))
>>> path = save(folder, net, ["a", "b"], np.zeros((3, 4), np.float32), "toy", {"hr@10": 0.5})
>>> latest_version(folder) == path.name, load_latest(folder).item_ids
(True, ['a', 'b'])
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from streamrec.models.sequence import SequenceConfig, SequenceEncoder
from streamrec.models.versions import MANIFEST, free_version, latest_version

FORMAT = 1
WEIGHTS = "weights.safetensors"
TEXT_KEY = "item_text"


@dataclasses.dataclass
class Artifact:
    path: Path | None  # None: built in memory (`in_memory`), never written
    model: SequenceEncoder
    item_ids: list[str]
    item_text: np.ndarray
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def text_model(self) -> str:
        return str(self.manifest["text_model"])

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.manifest.get("metrics", {}))


def save(
    model_dir: str | Path,
    model: SequenceEncoder,
    item_ids: Sequence[str],
    item_text: np.ndarray,
    text_model: str,
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """Write a new version under ``model_dir``; returns its folder."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    version = free_version(root, now)
    tmp = root / f".tmp-{version}-{os.getpid()}"
    tmp.mkdir()
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tensors[TEXT_KEY] = torch.from_numpy(np.ascontiguousarray(item_text, dtype=np.float32))
    save_file(tensors, tmp / WEIGHTS)
    manifest = _manifest(version, now, model, item_ids, text_model, metrics)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    os.rename(tmp, root / version)
    return root / version


def in_memory(
    model: SequenceEncoder,
    item_ids: Sequence[str],
    item_text: np.ndarray,
    text_model: str,
    metrics: Mapping[str, float] | None = None,
) -> Artifact:
    """An unsaved artifact (for evaluation right after training); version ``"memory"``."""
    manifest = _manifest("memory", dt.datetime.now(dt.UTC), model, item_ids, text_model, metrics)
    return Artifact(None, model.eval(), list(item_ids), np.asarray(item_text, dtype=np.float32), manifest)


def load(path: str | Path) -> Artifact:
    """Read one artifact folder; the model is returned in eval mode."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST).read_text())
    tensors = load_file(path / WEIGHTS)
    item_text = tensors.pop(TEXT_KEY).numpy()
    model = SequenceEncoder(SequenceConfig(**manifest["config"]))
    model.load_state_dict(tensors)
    return Artifact(path, model.eval(), list(manifest["item_ids"]), item_text, manifest)


def load_latest(model_dir: str | Path) -> Artifact | None:
    version = latest_version(model_dir)
    return None if version is None else load(Path(model_dir) / version)


def _manifest(
    version: str,
    now: dt.datetime,
    model: SequenceEncoder,
    item_ids: Sequence[str],
    text_model: str,
    metrics: Mapping[str, float] | None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": version,
        "created_at": now.isoformat(),
        "config": dataclasses.asdict(model.config),
        "item_ids": list(item_ids),
        "text_model": text_model,
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
    }
