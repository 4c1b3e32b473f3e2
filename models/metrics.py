"""Ranking accuracy and exposure metrics, shared by offline evaluation and backtests.

Accuracy, for one ranked list ``L`` and the item the user actually chose ``t``
(``rank`` is 1-based, ``inf`` when ``t`` is not in the top ``K``):

.. math::
    HR@K = [rank \\le K], \\quad NDCG@K = \\frac{[rank \\le K]}{\\log_2(rank + 1)}, \\quad
    MRR@K = \\frac{[rank \\le K]}{rank}

Exposure, over all top-``K`` lists served, with ``n_i`` = how often item ``i`` was shown,
``I`` = the catalog and ``T`` = the tail items:

.. math::
    coverage@K = \\frac{|\\{i : n_i > 0\\}|}{|I|}, \\quad
    Gini@K = \\frac{\\sum_{j=1}^{|I|} (2j - |I| - 1)\\, n_{(j)}}{|I| \\sum_j n_{(j)}} \\;(n \\text{ ascending}),
    \\quad tail\\_share@K = \\frac{\\sum_{i \\in T} n_i}{\\sum_i n_i}

>>> hit_rank(["a", "b", "c"], "b")
2
>>> round(ndcg(2, 10), 4), mrr(2, 10), hr(11, 10)
(0.6309, 0.5, 0.0)
>>> round(gini([0, 0, 10]), 3), gini([5, 5, 5])
(0.667, 0.0)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from streamrec.types import Item

MISS = math.inf
# Head = the most popular items that together make up this share of interactions.
HEAD_SHARE = 0.8


def hit_rank(ranked: Sequence[str], target: str) -> float:
    """1-based rank of ``target`` in ``ranked``, or `MISS`."""
    for rank, item in enumerate(ranked, 1):
        if item == target:
            return rank
    return MISS


def hr(rank: float, k: int) -> float:
    return 1.0 if rank <= k else 0.0


def ndcg(rank: float, k: int) -> float:
    return 1.0 / math.log2(rank + 1) if rank <= k else 0.0


def mrr(rank: float, k: int) -> float:
    return 1.0 / rank if rank <= k else 0.0


def accuracy(ranks: Iterable[float], ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """Mean HR/NDCG/MRR at each K over a set of target ranks."""
    ranks = list(ranks)
    n = max(len(ranks), 1)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = sum(hr(r, k) for r in ranks) / n
        out[f"ndcg@{k}"] = sum(ndcg(r, k) for r in ranks) / n
        out[f"mrr@{k}"] = sum(mrr(r, k) for r in ranks) / n
    return out


def gini(counts: Sequence[float]) -> float:
    """Gini index of an exposure distribution (0 = equal, 1 = all on one item)."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(values), values.sum()
    if n == 0 or total == 0:
        return 0.0
    j = np.arange(1, n + 1)
    return float(((2 * j - n - 1) * values).sum() / (n * total))


def head_items(interaction_counts: Counter[str], share: float = HEAD_SHARE) -> set[str]:
    """Most popular items covering ``share`` of all interactions (ties: item id order)."""
    total = sum(interaction_counts.values())
    head: set[str] = set()
    running = 0
    for item, count in sorted(interaction_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if running >= share * total:
            break
        head.add(item)
        running += count
    return head


def exposure(lists: Iterable[Sequence[str]], catalog: Sequence[str], head: set[str], k: int) -> dict[str, float]:
    """Coverage, Gini and tail share of the top-``k`` of every served list."""
    shown: Counter[str] = Counter()
    for ranked in lists:
        shown.update(ranked[:k])
    total = sum(shown.values())
    tail = sum(n for item, n in shown.items() if item not in head)
    return {
        f"coverage@{k}": len([i for i in catalog if shown[i] > 0]) / max(len(catalog), 1),
        f"gini@{k}": gini([shown[i] for i in catalog]),
        f"tail_share@{k}": tail / total if total else 0.0,
    }


def masked_ranks(scores: np.ndarray, targets: Sequence[int], banned: Sequence[Iterable[int]]) -> np.ndarray:
    """1-based rank of each row's target column among the row's non-banned columns.

    Full ranking over the catalog: ``rank = 1 + |{j \\notin banned : s_j > s_{target}}|``.

    >>> masked_ranks(np.array([[0.9, 0.5, 0.7], [0.1, 0.2, 0.3]]), [1, 0], [[0], []]).tolist()
    [2.0, 3.0]
    """
    scores = np.array(scores, dtype=np.float64)
    rows = np.arange(len(scores))
    for row, cols in zip(range(len(scores)), banned, strict=True):
        cols = [c for c in cols if c != targets[row]]
        scores[row, cols] = -np.inf
    target_scores = scores[rows, np.asarray(targets)]
    return 1.0 + (scores > target_scores[:, None]).sum(axis=1).astype(np.float64)


# --- Beyond-accuracy metrics of served lists (backtests) -----------------------------
#
# ``phi(i)`` = interactions of item ``i`` in the training part, ``N = sum_i phi(i)``,
# ``|I|`` = catalog size, ``L`` = the served lists (one per impression), top ``K`` of each:
#
# .. math::
#     ARP@K = \frac{1}{|L|} \sum_{l \in L} \frac{1}{|l_K|} \sum_{i \in l_K} \phi(i), \quad
#     novelty@K = \frac{1}{|L|} \sum_{l} \frac{1}{|l_K|} \sum_{i \in l_K} -\log_2 \frac{\phi(i) + 1}{N + |I|}
#
# and, with ``G_i`` = the set of categories of item ``i`` and Jaccard distance
# ``d(i, j) = 1 - |G_i \cap G_j| / |G_i \cup G_j|`` (0 when both are empty):
#
# .. math:: ILD@K = \frac{1}{|L|} \sum_{l} \frac{2}{|l_K|(|l_K| - 1)} \sum_{a < b} d(l_a, l_b)


def arp(lists: Iterable[Sequence[str]], popularity: Counter[str], k: int) -> float:
    """Average recommendation popularity: mean training interactions of a shown item.

    >>> arp([["a", "b"], ["a"]], Counter({"a": 4, "b": 2}), k=2)
    3.5
    """
    per_list = [sum(popularity[i] for i in ranked[:k]) / len(ranked[:k]) for ranked in lists if ranked]
    return sum(per_list) / len(per_list) if per_list else 0.0


def self_information(popularity: Counter[str], catalog_size: int) -> dict[str, float]:
    """``-log2 p(i)`` with Laplace-smoothed ``p(i) = (phi(i) + 1) / (N + |I|)``; unseen items: key absent."""
    denominator = sum(popularity.values()) + max(catalog_size, 1)
    return {item: -math.log2((n + 1) / denominator) for item, n in popularity.items()}


def novelty(lists: Iterable[Sequence[str]], popularity: Counter[str], catalog_size: int, k: int) -> float:
    """Mean self-information of shown items (higher = less popular = more novel).

    >>> round(novelty([["a"], ["b"]], Counter({"a": 3}), catalog_size=2, k=1), 3)
    1.322
    """
    info = self_information(popularity, catalog_size)
    unseen = -math.log2(1 / (sum(popularity.values()) + max(catalog_size, 1)))
    per_list = [sum(info.get(i, unseen) for i in ranked[:k]) / len(ranked[:k]) for ranked in lists if ranked]
    return sum(per_list) / len(per_list) if per_list else 0.0


def category_sets(items: Iterable[Item]) -> dict[str, frozenset[str]]:
    """Item id -> set of its categories (`Item.categories`: ``"Action, Drama"`` -> {Action, Drama}).

    >>> category_sets([Item("a", "A", category="Action, Drama")])["a"] == {"Action", "Drama"}
    True
    """
    return {item.item_id: frozenset(item.categories) for item in items}


def jaccard_distance(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return 1.0 - len(a & b) / union if union else 0.0


def intra_list_diversity(lists: Iterable[Sequence[str]], features: dict[str, frozenset[str]], k: int) -> float:
    """Mean pairwise Jaccard distance of categories inside each list (lists of < 2 items skipped).

    >>> f = {"a": frozenset({"x"}), "b": frozenset({"x"}), "c": frozenset({"y"})}
    >>> round(intra_list_diversity([["a", "b", "c"]], f, k=3), 4)
    0.6667
    """
    empty: frozenset[str] = frozenset()
    cache: dict[tuple[str, ...], float] = {}
    per_list = []
    for ranked in lists:
        key = tuple(ranked[:k])
        if len(key) < 2:
            continue
        if key not in cache:
            sets = [features.get(i, empty) for i in key]
            pairs = [jaccard_distance(a, b) for n, a in enumerate(sets) for b in sets[n + 1 :]]
            cache[key] = sum(pairs) / len(pairs)
        per_list.append(cache[key])
    return sum(per_list) / len(per_list) if per_list else 0.0
