"""FAISS retrieval: exclusions, availability, growth."""

from __future__ import annotations

import numpy as np

from streamrec.models.retrieval import ItemIndex


def _index() -> ItemIndex:
    index = ItemIndex(2)
    # Scores against the query (1, 0): a=5, b=4, c=3, d=2, e=1.
    index.add(list("abcde"), np.array([[5, 0], [4, 0], [3, 0], [2, 0], [1, 0]], np.float32))
    return index


QUERY = np.array([[1.0, 0.0]], np.float32)


def test_excluded_items_are_never_returned_and_the_list_is_still_full() -> None:
    assert [i for i, _ in _index().search(QUERY, 2, [{"a", "b", "c"}])[0]] == ["d", "e"]


def test_each_query_has_its_own_exclusion_set() -> None:
    lists = _index().search(np.repeat(QUERY, 2, axis=0), 1, [{"a"}, set()])
    assert [ranked[0][0] for ranked in lists] == ["b", "a"]


def test_unavailable_items_leave_and_come_back() -> None:
    index = _index()
    index.set_available("a", False)
    assert [i for i, _ in index.search(QUERY, 2)[0]] == ["b", "c"]
    index.set_available("a", True)
    assert [i for i, _ in index.search(QUERY, 2)[0]] == ["a", "b"]
    assert len(index) == 5


def test_new_items_and_replaced_vectors_are_searchable_at_once() -> None:
    index = _index()
    index.add(["f", "e"], np.array([[10, 0], [0, 1]], np.float32))
    ranked = index.search(QUERY, 6)[0]
    assert ranked[0] == ("f", 10.0)
    assert ("e", 0.0) in ranked and len(index) == 6


def test_asking_for_more_than_the_catalog_returns_the_catalog_once() -> None:
    ranked = _index().search(QUERY, 50, [{"c"}])[0]
    assert [i for i, _ in ranked] == ["a", "b", "d", "e"]


def test_a_batch_equals_each_query_filtered_by_hand() -> None:
    """Random vectors, exclusion sets with unknown ids and items unavailable: every list is
    the brute-force top-n of the available, non-excluded items."""
    rng = np.random.default_rng(7)
    ids = [f"i{n}" for n in range(60)]
    vectors = rng.normal(size=(60, 4)).astype(np.float32)
    index = ItemIndex(4)
    index.add(ids, vectors)
    for item in ids[::7]:
        index.set_available(item, False)
    queries = rng.normal(size=(9, 4)).astype(np.float32)
    exclude = [{*rng.choice(ids, size=n, replace=False).tolist(), "unknown"} for n in range(9)]
    for query, banned, ranked in zip(queries, exclude, index.search(queries, 10, exclude), strict=True):
        allowed = [i for n, i in enumerate(ids) if n % 7 and i not in banned]
        best = sorted(allowed, key=lambda i: -float(vectors[ids.index(i)] @ query))[:10]
        assert [i for i, _ in ranked] == best
