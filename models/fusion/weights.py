"""The fusion ranker's weights: standardisation and coefficients of its logit, one file
per model version (``<model_dir>/<version>/fusion.json``, beside the transformer it was
fitted with; `models.artifact.publish` writes it into a new version).

The features are ``x = u \\otimes b`` (`feature_names`; `models.fusion.features`). Without
a file the ranker is CombSUM: ``\\theta`` = 1 on each source's scaled score, 0 elsewhere.

>>> weights = FusionWeights.combsum(("cooccurrence", "trending"))
>>> [n for n, c in zip(feature_names(weights.sources), weights.coef) if c]
['1*score:cooccurrence', '1*score:trending']
>>> import tempfile
>>> FusionWeights.load(weights.save(tempfile.mkdtemp()).parent).coef.sum()
np.float64(2.0)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.models.versions import check_format

FORMAT = 1
WEIGHTS_FILE = "fusion.json"
USER_FEATURES = ("1", "history", "click_share", "purchase_share")


def candidate_features(sources: Sequence[str]) -> list[str]:
    """Names of ``b``: bias, one score and one rank per source, popularity, age."""
    return ["1", *(f"score:{s}" for s in sources), *(f"rank:{s}" for s in sources), "popularity", "age"]


def feature_names(sources: Sequence[str]) -> list[str]:
    return [f"{u}*{b}" for u in USER_FEATURES for b in candidate_features(sources)]


@dataclass
class FusionWeights:
    """Standardisation and coefficients of the logit, in `feature_names` order."""

    sources: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def combsum(cls, sources: Sequence[str]) -> FusionWeights:
        """Untrained default: the sum of the sources' scaled scores."""
        names = feature_names(sources)
        coef = np.array([1.0 if n.startswith("1*score:") else 0.0 for n in names])
        return cls(tuple(sources), np.zeros(len(names)), np.ones(len(names)), coef, {"fitted": False})

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.coef

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """``(n, S)``: each source's share of the logit (its score and rank terms)."""
        return (((features - self.mean) / self.scale) * self.coef) @ self._source_terms

    @functools.cached_property
    def _source_terms(self) -> np.ndarray:
        """``(features, S)`` 0/1: which source's score or rank each feature is."""
        names = [name.partition("*")[2].partition(":")[2] for name in feature_names(self.sources)]
        return np.array([[name == source for source in self.sources] for name in names], dtype=np.float64)

    def dumps(self) -> str:
        """The file's text (what `save` writes, and `models.artifact.publish` is given)."""
        data = {
            "format": FORMAT,
            "sources": list(self.sources),
            "features": feature_names(self.sources),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "meta": self.meta,
        }
        return json.dumps(data, indent=1)

    def save(self, folder: str | Path) -> Path:
        """Write ``<folder>/fusion.json`` (atomically); returns its path."""
        path = Path(folder) / WEIGHTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.dumps())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> FusionWeights | None:
        """``<folder>/fusion.json`` (a model version's folder), None if absent; raises
        `models.versions.UnsupportedFormat` for another format."""
        path = Path(folder) / WEIGHTS_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        check_format(path, data, FORMAT)
        if data["features"] != feature_names(data["sources"]):
            raise ValueError(f"{path}: features do not match the sources {data['sources']}")
        mean, scale, coef = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
        return cls(tuple(data["sources"]), mean, scale, coef, data.get("meta", {}))
