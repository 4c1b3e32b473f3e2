"""The array form of ranked lists (`models.base.TopK`) holds exactly the tuple form: same
items, same order (ties included), same float scores, for every array-native path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.base import ItemVocab, TopK, top_k_chunked, top_k_rows
from streamrec.models.fusion.features import ItemUnion, Proposals
from streamrec.models.retrieval import ItemIndex
from streamrec.types import Ranked, UserContext

ITEMS = "abcdefgh"
# Lists of (item, score) with few distinct scores (ties), some empty.
LISTS = st.lists(
    st.lists(st.tuples(st.sampled_from(ITEMS), st.integers(0, 3).map(float)), max_size=6, unique_by=lambda p: p[0]),
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(LISTS)
def test_lists_round_trip_through_the_arrays(lists: list[Ranked]) -> None:
    top = TopK.of(lists)
    assert top.lists() == lists and len(top) == len(lists)
    assert top.item.dtype == np.int64 and top.lengths.dtype == np.int64 and top.score.dtype == np.float64


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 2), min_size=8, max_size=8), min_size=1, max_size=6),
    st.integers(1, 9),
    st.data(),
)
def test_top_k_rows_arrays_are_the_sorted_prefix_with_empty_rows(rows: list[list[int]], k: int, data) -> None:
    """Ties to the older item, banned items (some out of range), rows with everything banned."""
    vocab = ItemVocab(ITEMS)
    scores = np.array(rows, dtype=np.float64)
    banned = [data.draw(st.one_of(st.just(list(range(10))), st.lists(st.integers(0, 9), max_size=5))) for _ in rows]
    expected = []
    for row, ban in zip(rows, banned, strict=True):
        allowed = sorted((-s, i) for i, s in enumerate(row) if i not in ban)
        expected.append([(ITEMS[i], float(-s)) for s, i in allowed[:k]])
    top = top_k_rows(scores, k, vocab, banned)
    assert top.lists() == expected
    assert top.lengths.tolist() == [len(r) for r in expected]


def test_chunks_join_into_one_batch_and_an_empty_batch_is_empty() -> None:
    vocab = ItemVocab(ITEMS)
    users = [UserContext(f"u{n}") for n in range(150)]  # three chunks of `USER_CHUNK`
    rng = np.random.default_rng(1)
    table = rng.integers(0, 3, (len(users), len(ITEMS))).astype(np.float64)
    rows = {user.user_id: row for user, row in zip(users, table, strict=True)}
    joined = top_k_chunked(users, 4, vocab, lambda chunk: np.stack([rows[u.user_id] for u in chunk]), lambda u: [])
    assert joined.lists() == top_k_rows(table, 4, vocab, [[] for _ in users]).lists()
    assert top_k_chunked([], 4, vocab, lambda chunk: table[:0], lambda u: []).lists() == []


def reference_search(index: ItemIndex, queries: np.ndarray, n: int, exclude: list[set[str]]) -> list[Ranked]:
    """The tuple-by-tuple filter `ItemIndex.search` used to run over FAISS's rows."""
    fetch = min(len(index), n + max(len(x) for x in exclude))
    scores, rows = index.nearest(queries, fetch)
    ids = index.vocab.ids
    return [
        [(ids[r], s) for s, r in zip(row_scores, row_ids, strict=True) if r >= 0 and ids[r] not in banned][:n]
        for row_scores, row_ids, banned in zip(scores.tolist(), rows.tolist(), exclude, strict=True)
    ]


@pytest.mark.parametrize("ann_min_items", [10_000, 100], ids=["flat", "ivf"])
def test_search_arrays_equal_the_tuple_filter(ann_min_items: int) -> None:
    """Integer vectors (many tied scores), unavailable items, exclusion sets from empty to
    the whole catalog, unknown ids: the arrays hold the same lists, scores bit for bit."""
    rng = np.random.default_rng(3)
    ids = [f"i{n}" for n in range(200)]
    index = ItemIndex(3, ann_min_items)
    index.add(ids, rng.integers(-2, 3, (len(ids), 3)).astype(np.float32))
    assert index.approximate == (ann_min_items == 100)
    for item in ids[::9]:
        index.set_available(item, False)
    queries = rng.integers(-2, 3, (12, 3)).astype(np.float32)
    exclude = [{*rng.choice(ids, size=3 * n, replace=False).tolist(), "unknown"} for n in range(11)] + [set(ids)]
    for n in (1, 10, 300):
        top = index.search_arrays(queries, n, exclude)
        assert top.vocab is index.vocab
        assert top.lists() == reference_search(index, queries, n, exclude) == index.search(queries, n, exclude)
    assert index.search_arrays(queries[:0], 5).lists() == []


def reference_proposals(lists: list[list[Ranked]]) -> list[tuple[int, int, int, float, str]]:
    """``(user, source, rank, scaled score, item)`` of every proposal, one tuple at a time:
    user by user, source by source, best first; scores min-max scaled per list."""
    out = []
    for n in range(len(lists[0])):
        for s, by_source in enumerate(lists):
            scores = [score for _, score in by_source[n]]
            low, high = min(scores, default=0.0), max(scores, default=0.0)
            for r, (item, score) in enumerate(by_source[n]):
                out.append((n, s, r + 1, (score - low) / (high - low) if high > low else 1.0, item))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(LISTS, min_size=3, max_size=3), min_size=1, max_size=3))
def test_proposals_from_arrays_equal_the_tuple_union(batches: list[list[list[Ranked]]]) -> None:
    """Sources over their own (growing) vocabularies, one union kept across batches; users
    with empty lists. Proposals come user by user, source by source; items first-proposed first."""
    union = ItemUnion()
    vocabs = [ItemVocab(reversed(ITEMS)), ItemVocab()]  # one source over a shared, growing vocabulary
    for batch in batches:
        users = min(map(len, batch))
        lists = [by_source[:users] for by_source in batch]
        if not users:
            continue
        tops = [TopK.of(lists[0])]
        for vocab, source in zip(vocabs, lists[1:], strict=True):
            item = np.array([vocab.add(i) for ranked in source for i, _ in ranked], dtype=np.int64)
            score = np.array([s for ranked in source for _, s in ranked], dtype=np.float64)
            tops.append(TopK(vocab, item, np.array([len(r) for r in source], dtype=np.int64), score))
        p = Proposals.of(tops, union)
        items = [p.item_ids[i] for i in p.item.tolist()]
        expected = reference_proposals(lists)
        columns = (p.user.tolist(), p.source.tolist(), p.rank.tolist(), p.score.tolist(), items)
        assert list(zip(*columns, strict=True)) == expected
        assert p.item_ids == list(dict.fromkeys(item for *_, item in expected))
