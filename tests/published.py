"""What a model command published under a model folder, for tests that require it to be there
(a failed assertion, not a None, when it is missing)."""

from __future__ import annotations

from pathlib import Path

from streamrec.models.artifact import Artifact, load_latest
from streamrec.models.fusion import FusionWeights
from streamrec.models.versions import latest_version


def newest_version(model_dir: str | Path) -> str:
    version = latest_version(model_dir)
    assert version is not None, f"no version under {model_dir}"
    return version


def newest_artifact(model_dir: str | Path) -> Artifact:
    artifact = load_latest(model_dir)
    assert artifact is not None, f"no artifact under {model_dir}"
    return artifact


def fusion_weights(folder: str | Path) -> FusionWeights:
    weights = FusionWeights.load(folder)
    assert weights is not None, f"no fusion weights in {folder}"
    return weights
