"""Versioned model artifacts: ``<model_dir>/<version>/{weights.safetensors, manifest.json, ...}``.

Versions are named and published by `models.versions` (written to a hidden folder, then
renamed into place). Everything a worker loads for a model lives inside its version
folder: besides the weights and the manifest, `publish` writes any further files it is
given (the fusion ranker's ``fusion.json``), so a refit of those is a new version that
shares the transformer's weights file (hard-linked) and running workers hot-reload it.

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
>>> again = publish(folder, load(path), {"notes.txt": "refit"})  # same weights, one more file
>>> load_latest(folder).manifest["parent"] == path.name, (again / "notes.txt").read_text()
(True, 'refit')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from streamrec.models.sequence import SequenceConfig, SequenceEncoder
from streamrec.models.versions import MANIFEST, check_format, latest_version, new_version

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

    @property
    def young(self) -> dict[str, int]:
        """Rows a warm start grew from zero, with the events each has learned from since
        (until it matures: `models.transformer` fades their new-item boost)."""
        return dict(self.manifest.get("young_rows", {}))


def save(
    model_dir: str | Path,
    model: SequenceEncoder,
    item_ids: Sequence[str],
    item_text: np.ndarray,
    text_model: str,
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """Write a new version under ``model_dir``; returns its folder."""
    return publish(model_dir, in_memory(model, item_ids, item_text, text_model, metrics))


def publish(model_dir: str | Path, artifact: Artifact, files: Mapping[str, str] | None = None) -> Path:
    """Write ``artifact`` as a new version under ``model_dir``, with ``files`` (name -> text)
    inside it; returns its folder. A saved artifact's weights file is hard-linked (a refit
    costs no copy), an in-memory one's is written; the manifest names the saved one as
    ``parent``."""
    with new_version(model_dir) as draft:
        if artifact.path is None:
            tensors = {k: v.detach().contiguous() for k, v in artifact.model.state_dict().items()}
            tensors[TEXT_KEY] = torch.from_numpy(np.ascontiguousarray(artifact.item_text, dtype=np.float32))
            save_file(tensors, draft.folder / WEIGHTS)
        else:
            _link_or_copy(artifact.path / WEIGHTS, draft.folder / WEIGHTS)
        for name, text in (files or {}).items():
            (draft.folder / name).write_text(text)
        manifest = artifact.manifest | {"version": draft.version, "created_at": draft.created_at.isoformat()}
        if artifact.path is not None:
            manifest["parent"] = artifact.version
        (draft.folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return Path(model_dir) / draft.version


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` (versions never change once written), or copy it across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def in_memory(
    model: SequenceEncoder,
    item_ids: Sequence[str],
    item_text: np.ndarray,
    text_model: str,
    metrics: Mapping[str, float] | None = None,
    young: Mapping[str, int] | None = None,
) -> Artifact:
    """An unsaved artifact (for evaluation right after training); version ``"memory"``.

    ``young``: rows grown from zero and the events each has learned from (`Artifact.young`)."""
    manifest = _manifest("memory", dt.datetime.now(dt.UTC), model, item_ids, text_model, metrics)
    if young:
        manifest["young_rows"] = {k: int(v) for k, v in young.items()}
    return Artifact(None, model.eval(), list(item_ids), np.asarray(item_text, dtype=np.float32), manifest)


def load(path: str | Path) -> Artifact:
    """Read one artifact folder; the model is returned in eval mode.

    Raises `models.versions.UnsupportedFormat` for a manifest of another format."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST).read_text())
    check_format(path / MANIFEST, manifest, FORMAT)
    tensors = load_file(path / WEIGHTS)
    item_text = tensors.pop(TEXT_KEY).numpy()
    model = SequenceEncoder(SequenceConfig(**manifest["config"]))
    model.load_state_dict(tensors)
    return Artifact(path, model.eval(), list(manifest["item_ids"]), item_text, manifest)


def load_latest(model_dir: str | Path) -> Artifact | None:
    """The newest version under ``model_dir``; or ``model_dir`` itself if it is one (holds a
    manifest): so a factory given a version folder (a challenger's) loads that version."""
    if (Path(model_dir) / MANIFEST).is_file():
        return load(model_dir)
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
