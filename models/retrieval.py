"""Exact top-n retrieval over item vectors with FAISS (inner product), by item id.

Only available items are in the FAISS index; every vector is also kept in a dense table,
so an item taken off the catalog and put back costs one add, not a re-encode. A query
with an exclusion set ``X`` over-fetches ``n + |X|`` neighbours, which guarantees ``n``
results (catalog permitting) whatever ``X`` holds:

.. math:: top_n(q) = \\operatorname{top}_n \\{(i, q \\cdot v_i) : i \\text{ available}, i \\notin X\\}

>>> index = ItemIndex(2)
>>> index.add(["a", "b", "c"], np.array([[1, 0], [0.5, 0], [0, 1]], np.float32))
>>> index.search(np.array([[1, 0.1]], np.float32), 2, [{"a"}])  # doctest: +ELLIPSIS
[[('b', 0.5), ('c', 0.1...)]]
>>> index.set_available("b", False); index.search(np.array([[1, 0.1]], np.float32), 2)  # doctest: +ELLIPSIS
[[('a', 1.0), ('c', 0.1...)]]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import faiss
import numpy as np

from streamrec.models.base import ItemVocab
from streamrec.types import Ranked

faiss.omp_set_num_threads(1)


class ItemIndex:
    """Item-id-addressed ``IndexFlatIP`` with availability and per-query exclusions."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.vocab = ItemVocab()
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.available = np.zeros(0, dtype=bool)
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        """Number of searchable (available) items."""
        return int(self.index.ntotal)

    def add(self, item_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add items (available), or replace the vectors of known ones."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(item_ids), self.dim)
        rows = np.array([self.vocab.add(i) for i in item_ids], dtype=np.int64)
        grow = len(self.vocab) - len(self.vectors)
        if grow > 0:
            self.vectors = np.concatenate([self.vectors, np.zeros((grow, self.dim), np.float32)])
            self.available = np.concatenate([self.available, np.zeros(grow, bool)])
        self.vectors[rows] = vectors
        self._unindex(rows[self.available[rows]])
        self.available[rows] = True
        self.index.add_with_ids(self.vectors[rows], rows)

    def set_available(self, item_id: str, available: bool) -> None:
        """Take a known item off the index, or put it back; unknown ids are ignored."""
        row = self.vocab.index(item_id)
        if row is None or self.available[row] == available:
            return
        self.available[row] = available
        rows = np.array([row], dtype=np.int64)
        if available:
            self.index.add_with_ids(self.vectors[rows], rows)
        else:
            self._unindex(rows)

    def is_available(self, item_id: str) -> bool:
        row = self.vocab.index(item_id)
        return row is not None and bool(self.available[row])

    def vector(self, item_id: str) -> np.ndarray | None:
        row = self.vocab.index(item_id)
        return None if row is None else self.vectors[row]

    def search(self, queries: np.ndarray, n: int, exclude: Sequence[Collection[str]] | None = None) -> list[Ranked]:
        """Top-``n`` ``(item_id, score)`` per query row, best first, never an excluded item."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        exclude = exclude or [frozenset()] * len(queries)
        fetch = min(len(self), n + max((len(x) for x in exclude), default=0))
        if fetch == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, rows = self.index.search(queries, fetch)
        out = []
        ids = self.vocab.ids
        # tolist: Python numbers made in C, not one numpy scalar per result (fusion fetches 100s per user).
        for row_scores, row_ids, banned in zip(scores.tolist(), rows.tolist(), exclude, strict=True):
            ranked = [(ids[r], s) for s, r in zip(row_scores, row_ids, strict=True) if r >= 0 and ids[r] not in banned]
            out.append(ranked[:n])
        return out

    def _unindex(self, rows: np.ndarray) -> None:
        # faiss wraps remove_ids on every index class to take an id array; its stub lists that
        # overload for some classes only, not IndexIDMap2.
        self.index.remove_ids(rows)  # type: ignore[arg-type]
