"""Batched scoring (whole micro-batch in matrix ops) equals scoring one user at a time."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.base import ItemVocab, top_k_rows, window_weights
from streamrec.models.cooccurrence import CONTEXT_SPAN, CoOccurrence
from streamrec.models.trending import RECENCY, Trending
from streamrec.streams.sources import synthetic_catalog, synthetic_events
from streamrec.types import Interaction, UserContext

ITEMS, USERS, EVENTS = 120, 40, 3000


def fed(model: CoOccurrence | Trending) -> list[UserContext]:
    """``model`` fed a synthetic stream (with categories); each user's context at its end."""
    model.update_items(synthetic_catalog(ITEMS))
    windows: dict[str, list[Interaction]] = {}
    for event in synthetic_events(EVENTS, USERS, ITEMS, seed=3):
        window = windows.setdefault(event.user_id, [])
        interaction = Interaction(event.item_id, event.event_type, event.ts)
        model.learn(UserContext(event.user_id, tuple(window[-50:])), interaction)
        window.append(interaction)
    users = [UserContext(u, tuple(w[-50:]), frozenset(i.item_id for i in w[-5:])) for u, w in sorted(windows.items())]
    return [*users, UserContext("new")]


def reference_trending(model: Trending, user: UserContext) -> np.ndarray:
    """The per-user maths of the module doc, with a dense 0/1 membership matrix."""
    trend = model.trend()
    weights = window_weights(user.window, model.weights, RECENCY)
    profile = np.zeros(len(model.categories.names))
    for entry, w in zip(user.window, weights, strict=True):
        for c in model.categories.of_item.get(entry.item_id, ()):
            profile[c] += w
    if not profile.any():
        return trend
    profile /= weights.sum()
    membership = np.zeros((len(trend), len(profile)))
    for row, item_id in enumerate(model.items.vocab.ids[: len(trend)]):
        membership[row, list(model.categories.of_item.get(item_id, ()))] = 1.0
    return trend * (model.global_share + (membership * profile).max(axis=1))


def reference_cooccurrence(model: CoOccurrence, user: UserContext) -> np.ndarray:
    pop_part = model.blend * model.popularity.trend()
    scores = np.zeros_like(pop_part)
    for d, recent in enumerate(reversed(user.window[-CONTEXT_SPAN:])):
        source = model.items.vocab.index(recent.item_id)
        row = model.counts.get(source) if source is not None else None
        if row:
            weight = (0.6**d) * model.weights[recent.event_type] / model.totals[source]
            for target, credit in row.items():
                scores[target] += weight * credit
    top = scores.max()
    return (scores / top if top > 0 else scores) + pop_part


def test_batched_trending_scores_equal_the_per_user_reference() -> None:
    model = Trending(half_life_s=3600.0)
    users = fed(model)
    batched = model.user_scores(users, model.trend())
    for user, row in zip(users, batched, strict=True):
        np.testing.assert_allclose(row, reference_trending(model, user), rtol=1e-12, atol=0)
    lists = model.recommend(users, 10)
    for user, ranked in zip(users, lists, strict=True):
        assert ranked == model.recommend([user], 10)[0]
        assert not {i for i, _ in ranked} & user.exclude


def test_batched_cooccurrence_scores_equal_the_per_user_reference() -> None:
    model = CoOccurrence(half_life_s=3600.0)
    users = fed(model)
    batched = model._scores(users, model.blend * model.popularity.trend())
    for user, row in zip(users, batched, strict=True):
        np.testing.assert_allclose(row, reference_cooccurrence(model, user), rtol=1e-12, atol=0)
    assert model.recommend(users, 10) == [model.recommend([user], 10)[0] for user in users]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 3), min_size=6, max_size=6), min_size=1, max_size=5),
    st.integers(1, 7),
    st.data(),
)
def test_top_k_rows_is_the_sorted_prefix_older_items_first_on_ties(rows: list[list[int]], k: int, data) -> None:
    vocab = ItemVocab("abcdef")
    scores = np.array(rows, dtype=np.float64)
    banned = [data.draw(st.lists(st.integers(0, 7), max_size=4)) for _ in rows]
    expected = []
    for row, ban in zip(rows, banned, strict=True):
        allowed = sorted((-s, i) for i, s in enumerate(row) if i not in ban)
        expected.append([(vocab.ids[i], float(-s)) for s, i in allowed[:k]])
    assert top_k_rows(scores, k, vocab, banned).lists() == expected


def test_closest_window_item_is_batched_and_the_earliest_entry_of_an_item_met_twice() -> None:
    from streamrec.models.content import closest, closest_many
    from streamrec.models.retrieval import ItemIndex

    rng = np.random.default_rng(0)
    index = ItemIndex(8)
    index.add([f"i{n}" for n in range(30)], rng.standard_normal((30, 8)).astype(np.float32))
    windows = [
        tuple(Interaction(f"i{rng.integers(0, 12)}", ("view", "click")[n % 2], float(n)) for n in range(int(size)))
        for size in rng.integers(0, 25, 40)
    ]
    asked = [[f"i{n}" for n in rng.integers(0, 32, int(size))] for size in rng.integers(0, 10, 40)]
    batched = closest_many(index, windows, asked)
    assert batched == [closest(index, w, a) for w, a in zip(windows, asked, strict=True)]
    for window, items, found in zip(windows, asked, batched, strict=True):
        for item_id, anchor in zip(items, found, strict=True):
            if anchor is not None:
                assert anchor.item_id != item_id
                assert anchor == next(e for e in window[-20:] if e.item_id == anchor.item_id)  # the earliest


def test_fusion_explains_a_batch_as_it_explains_each_list() -> None:
    from streamrec.models.content import Content
    from streamrec.models.fusion import Fusion

    ids = [item.item_id for item in synthetic_catalog(ITEMS)]
    vectors = np.random.default_rng(1).standard_normal((ITEMS, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sources = {"cooccurrence": CoOccurrence(), "content": Content(vectors=(ids, vectors)), "trending": Trending()}
    model = Fusion(sources)  # type: ignore[arg-type]
    users = fed(model)  # type: ignore[arg-type]
    lists = model.recommend(users, 10)
    batched = model.explain_all(users, lists)
    assert batched == [model.explain(user, ranked) for user, ranked in zip(users, lists, strict=True)]
    assert {why["source"] for reasons in batched for why in reasons} >= {"cooccurrence", "content", "trending"}
