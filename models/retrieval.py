"""Top-n retrieval over item vectors with FAISS (inner product), by item id: exact for a
catalog below `ANN_MIN_ITEMS` items, approximate (IVF) above.

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

Above `ANN_MIN_ITEMS` available items the flat index becomes an inverted file
(``IndexIVFFlat``) of ``nlist = LISTS_PER_SQRT_N · √N`` k-means cells, of which a query
scans the ``nprobe = nlist · PROBE_SHARE`` nearest. Inner-product cells fit vectors of
unequal norms badly (a few large centroids take most items: recall@100 was 0.25 on the
transformer's vectors), so the cells are built for Euclidean distance on vectors lifted
to one common norm ``M`` (the largest at training), which turns the largest inner product
into the nearest neighbour:

.. math:: \\tilde v = (v, \\sqrt{M^2 - \\|v\\|^2}),\\ \\tilde q = (q, 0):\\quad
          \\|\\tilde q - \\tilde v\\|^2 = \\|q\\|^2 + M^2 - 2\\, q \\cdot v

The candidates found are rescored with their stored vectors, so scores are exact inner
products (the new-item boost dimension of `streamrec.models.transformer` adds exactly as
before); only which items are scanned is approximate. The cells are retrained when the
catalog has doubled since. Adds, availability and exclusions behave as in the flat index
(IVF removes by id).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain

import faiss
import numpy as np

from streamrec.models.base import ItemVocab, TopK
from streamrec.types import Ranked

faiss.omp_set_num_threads(1)

# Below this many items exact search is fast enough: a flat top-100 scan costs ~N·d flops,
# ~1.3k queries/s at 100k items (d=64, 1 thread) but ≥ 6k/s at 20k; above it, the inverted
# file answers several times faster at recall@100 ≥ 0.95 (bench/bench_scale.py --parts ann).
ANN_MIN_ITEMS = 20_000
# k-means cells per √N: √N cells of √N items. More cells cost k-means time at every start and
# hot reload (∝ cells²); FAISS's usual 4√N took minutes at 100k items on one loaded core.
LISTS_PER_SQRT_N = 1
# Share of the cells a query scans: the smallest of 1/16, 1/8, 1/4, 1/3 that kept recall@100
# ≥ 0.95 against exact search on a trained transformer's vectors (bench/bench_scale.py --parts ann).
PROBE_SHARE = 1 / 4
# Vectors per cell used to train the k-means: FAISS wants at least 39 and samples down to 256.
MIN_TRAIN_PER_LIST, TRAIN_PER_LIST = 39, 256
# k-means passes: cells for assignment settle in ~10 (FAISS's default 25 costs 2.5x the time).
TRAIN_ITERATIONS = 10
# Retrain the cells when the catalog has grown by this factor since they were trained.
RETRAIN_GROWTH = 2.0


class ItemIndex:
    """Item-id-addressed FAISS index with availability and per-query exclusions: flat
    (exact) below ``ann_min_items`` available items, IVF above."""

    def __init__(self, dim: int, ann_min_items: int = ANN_MIN_ITEMS) -> None:
        self.dim = dim
        self.ann_min_items = ann_min_items
        self.vocab = ItemVocab()
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.available = np.zeros(0, dtype=bool)
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.trained_on = 0  # items the IVF cells were trained on; 0 = exact search
        self.max_norm2 = 0.0  # M² of the lifted vectors (IVF only)

    @property
    def approximate(self) -> bool:
        return self.trained_on > 0

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
        self._index(rows)
        if len(self) >= max(self.ann_min_items, RETRAIN_GROWTH * self.trained_on):
            self._train_cells()

    def set_available(self, item_id: str, available: bool) -> None:
        """Take a known item off the index, or put it back; unknown ids are ignored."""
        row = self.vocab.index(item_id)
        if row is None or self.available[row] == available:
            return
        self.available[row] = available
        rows = np.array([row], dtype=np.int64)
        if available:
            self._index(rows)
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
        return self.search_arrays(queries, n, exclude).lists()

    def search_arrays(self, queries: np.ndarray, n: int, exclude: Sequence[Collection[str]] | None = None) -> TopK:
        """`search` as a `TopK` over `vocab` (FAISS's float32 scores, widened exactly)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        exclude = exclude or [frozenset()] * len(queries)
        fetch = min(len(self), n + max((len(x) for x in exclude), default=0))
        if fetch == 0 or len(queries) == 0:
            return TopK.empty(self.vocab, len(queries))
        scores, rows = self.nearest(queries, fetch)
        keep = (rows >= 0) & ~self._excluded(rows, exclude)
        keep &= np.cumsum(keep, axis=1) <= n  # the first n kept of each row
        return TopK(
            self.vocab, rows[keep].astype(np.int64, copy=False), keep.sum(axis=1), scores[keep].astype(np.float64)
        )

    def _excluded(self, rows: np.ndarray, exclude: Sequence[Collection[str]]) -> np.ndarray:
        """Whether each found row (one line per query) is in its query's exclusion set: keys
        ``q (|vocab| + 1) + row`` looked up in the sorted banned keys, not a set lookup per
        result. An unknown banned id (row -1) can only meet a result of row -1, dropped anyway."""
        width = len(self.vocab) + 1
        owner = np.repeat(np.arange(len(rows)), [len(x) for x in exclude])
        banned = np.sort(owner * width + self.vocab.indices(chain.from_iterable(exclude)))
        if not len(banned):
            return np.zeros(rows.shape, dtype=bool)
        keys = rows + (np.arange(len(rows)) * width)[:, None]
        return banned.take(np.searchsorted(banned, keys), mode="clip") == keys

    def nearest(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-style ``(scores, rows)`` of the top ``n`` available items per query, best
        first; rows of -1 (score -inf) where fewer were found."""
        if not self.approximate:
            return self.index.search(queries, n)
        _, rows = self.index.search(np.hstack([queries, np.zeros((len(queries), 1), np.float32)]), n)
        scores = np.einsum("qd,qkd->qk", queries, self.vectors[np.maximum(rows, 0)])
        scores[rows < 0] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)

    def _lifted(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` as the IVF holds them: one more coordinate, to norm ``M``
        (0 for a vector longer than ``M``, which the next retraining takes in)."""
        vectors = self.vectors[rows]
        rest = np.maximum(self.max_norm2 - (vectors**2).sum(axis=1), 0.0)
        return np.hstack([vectors, np.sqrt(rest)[:, None]]).astype(np.float32)

    def _index(self, rows: np.ndarray) -> None:
        self.index.add_with_ids(self._lifted(rows) if self.approximate else self.vectors[rows], rows)

    def _train_cells(self) -> None:
        """Replace the index by an IVF over the available items, its cells trained on them."""
        rows = np.flatnonzero(self.available).astype(np.int64)
        nlist = min(int(LISTS_PER_SQRT_N * np.sqrt(len(rows))), len(rows) // MIN_TRAIN_PER_LIST)
        sample = np.random.default_rng(0).choice(rows, min(len(rows), TRAIN_PER_LIST * nlist), replace=False)
        self.max_norm2 = float((self.vectors[rows] ** 2).sum(axis=1).max())
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(self.dim + 1), self.dim + 1, nlist, faiss.METRIC_L2)
        index.cp.niter = TRAIN_ITERATIONS
        index.train(self._lifted(np.sort(sample)))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # remove by id without a scan
        index.nprobe = max(1, round(nlist * PROBE_SHARE))
        self.index, self.trained_on = index, len(rows)
        self._index(rows)

    def _unindex(self, rows: np.ndarray) -> None:
        # faiss wraps remove_ids on every index class to take an id array; its stub lists that
        # overload for some classes only, not IndexIDMap2.
        self.index.remove_ids(rows)  # type: ignore[arg-type]
