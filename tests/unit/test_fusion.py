"""Fusion ranker, its sources and the long-tail re-ranker, on small hand-made streams."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from streamrec.models.artifact import save
from streamrec.models.content import Content
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.fusion import Fusion, FusionWeights, fit
from streamrec.models.metrics import exposure, head_items
from streamrec.models.registry import RecommenderOptions, initial_recommender, known, make_recommender
from streamrec.models.rerank import TailRerank
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.transformer import TransformerRecommender
from streamrec.models.trending import DAY_S, Trending
from streamrec.settings import Settings
from streamrec.streams.contracts import encode_item
from streamrec.streams.sources import synthetic_catalog, synthetic_events
from streamrec.types import Event, Interaction, Item, UserContext, parse_event_weights
from tests.topics import train_topic_model

TITLES = {"a": "Alpha", "b": "Beta", "c": "Gamma", "d": "Delta", "e": "Epsilon"}
# Two text "topics": a/b/c close to each other, d/e close to each other.
VECTORS = np.array([[1, 0], [0.95, 0.31], [0.9, 0.44], [0, 1], [0.2, 0.98]], np.float32)


def catalog() -> list[Item]:
    return [Item(i, t, category="Jazz" if i in "abc" else "Rock") for i, t in TITLES.items()]


def fusion(weights: FusionWeights | None = None) -> Fusion:
    sources = {
        "cooccurrence": CoOccurrence(),
        # Items announced later are "encoded" next to the Jazz topic.
        "content": Content(vectors=(list(TITLES), VECTORS), encode=lambda new: np.tile([0.97, 0.2], (len(new), 1))),
        "trending": Trending(),
    }
    model = Fusion(sources, weights)
    model.update_items(catalog())
    return model


def play(model, sequences: dict[str, list[str]], event_type: str = "click", ts: float = 0.0) -> None:
    for user, items in sequences.items():
        window: list[Interaction] = []
        for item in items:
            model.learn(UserContext(user, tuple(window)), Interaction(item, event_type, ts))
            window.append(Interaction(item, event_type, ts))


def test_a_brand_new_user_gets_k_items_trending_first_then_newest() -> None:
    model = fusion()
    assert [i for i, _ in model.recommend([UserContext("nobody")], 5)[0]] == [
        "e",
        "d",
        "c",
        "b",
        "a",
    ]  # no events: newest
    play(model, {"u1": ["b", "c"], "u2": ["c"]})
    ranked = model.recommend([UserContext("new", exclude=frozenset({"e"}))], 4)[0]
    assert [i for i, _ in ranked] == ["c", "b", "d", "a"]  # trending (c twice), then newest; "e" excluded
    model.update_items([Item("f", "Zeta")])
    assert len(model.recommend([UserContext("new")], 6)[0]) == 6


def test_fusion_ranks_items_the_sources_agree_on() -> None:
    model = fusion()
    play(model, {f"u{n}": ["a", "b"] for n in range(5)} | {"v": ["d", "e"]})
    user = UserContext("w", (Interaction("a", "click", 1.0),), frozenset({"a"}))
    assert model.recommend([user], 1)[0][0][0] == "b"  # follows "a" (co-occurrence) and is close in text


def test_explanations_name_items_from_the_users_window() -> None:
    model = fusion()
    play(model, {f"u{n}": ["a", "b", "d"] for n in range(3)})
    window = (Interaction("a", "purchase", 1.0), Interaction("d", "view", 2.0))
    user = UserContext("w", window, frozenset({"a", "d"}))
    ranked = model.recommend([user], 3)[0]
    explanations = model.explain(user, ranked)
    assert len(explanations) == len(ranked) and all(e["reason"] and e["source"] for e in explanations)
    window_titles = {TITLES[e.item_id] for e in window}
    for explanation in explanations:
        if explanation["source"] != "trending":
            assert any(explanation["reason"].endswith(title) for title in window_titles), explanation
    assert any(e["reason"] == "because you bought Alpha" for e in explanations)
    # A model that made no list for this user recomputes provenance: same answer.
    assert fusion_explain_again(model, user, ranked) == explanations


def fusion_explain_again(model: Fusion, user: UserContext, ranked):
    model.recommend([UserContext("someone else", (Interaction("e", "view", 3.0),))], 2)
    return model.explain(user, ranked)


def test_explanations_of_fallback_and_new_items() -> None:
    model = fusion()
    play(model, {"u": ["a"]})
    notes = model.explain(UserContext("new"), model.recommend([UserContext("new")], 2)[0])
    assert notes == [
        {"reason": "trending now", "source": "trending"},
        {"reason": "new in the catalog", "source": "newest"},
    ]
    play(model, {"u2": ["b"]}, ts=60 * DAY_S)  # the log is now older than NEW_ITEM_DAYS
    model.update_items([Item("jazz-new", "Fresh Jazz")])
    user = UserContext("w", (Interaction("a", "click", 1.0),), frozenset({"a"}))
    reasons = dict(
        zip(
            [i for i, _ in model.recommend([user], 5)[0]],
            model.explain(user, model.recommend([user], 5)[0]),
            strict=True,
        )
    )
    assert reasons["jazz-new"]["reason"] == "new item similar to Alpha"


def reference_features(model: Fusion, user: UserContext) -> tuple[list[str], np.ndarray]:
    """The module doc's ``x``, one candidate at a time: what `Fusion.features` computes in batches."""
    lists = [source.recommend([user], model.fetch)[0] for source in model.sources.values()]
    candidates = list(dict.fromkeys(item for ranked in lists for item, _ in ranked))
    types = [e.event_type for e in user.window]
    shares = [types.count(t) / len(types) for t in ("click", "purchase")]
    u = [1.0, math.log1p(len(types)) / math.log1p(50), *shares]
    counts = dict(zip(model.items.vocab.ids, model.items.live(), strict=True))
    top = math.log1p(max(counts.values()))
    clock = model.clock
    assert clock is not None  # the model has learned events
    rows = []
    for item in candidates:
        scores, ranks = [], []
        for ranked in lists:
            values = dict(ranked)
            low, high = min(values.values(), default=0.0), max(values.values(), default=0.0)
            scores.append(0.0 if item not in values else (values[item] - low) / (high - low) if high > low else 1.0)
            ranks.append(math.log2(1 + ([i for i, _ in ranked].index(item) + 1 if item in values else model.fetch + 1)))
        first = model.first_seen.get(item, clock)
        b = [1.0, *scores, *ranks, math.log1p(counts.get(item, 0.0)) / top, math.log1p((clock - first) / DAY_S)]
        rows.append([a * c for a in u for c in b])
    return candidates, np.array(rows)


def test_batched_features_and_ranking_match_the_one_candidate_at_a_time_reference() -> None:
    rng = np.random.default_rng(5)
    # "z" has a text vector but was never announced: a candidate the fusion has no counts for.
    vectors = ([*TITLES, "z"], np.vstack([VECTORS, [[0.6, 0.8]]]).astype(np.float32))
    content = Content(vectors=vectors, encode=lambda new: np.tile([0.97, 0.2], (len(new), 1)))
    model = Fusion({"cooccurrence": CoOccurrence(), "content": content, "trending": Trending()})
    model.update_items(catalog())
    play(model, {f"u{n}": ["a", "b", "d"] for n in range(3)} | {"v": ["e", "c"]}, ts=DAY_S)
    play(model, {"w": ["d", "a"]}, event_type="purchase", ts=9 * DAY_S)
    model.update_items([Item("f", "Zeta", category="Jazz")])  # first seen at the clock: age 0, no events
    n = len(model.weights.coef)
    model.weights = FusionWeights(model.weights.sources, rng.normal(size=n), rng.uniform(0.5, 2, n), rng.normal(size=n))
    windows = [("a",), ("d", "e", "a"), ("c", "x-unknown"), ("f",), ("b", "b", "z")]
    types = ("view", "click", "purchase")
    users = [
        UserContext(f"t{n}", tuple(Interaction(i, types[k % 3], 0.0) for k, i in enumerate(w)), frozenset(w[:1]))
        for n, w in enumerate(windows)
    ]
    batched = model.features(users)
    for user, (candidates, x) in zip(users, batched, strict=True):
        expected_candidates, expected = reference_features(model, user)
        assert candidates == expected_candidates
        np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-15)
    ranked = model.recommend(users, 3)
    for user, (candidates, _x), got in zip(users, batched, ranked, strict=True):
        logits = model.weights.logits(reference_features(model, user)[1])
        assert [i for i, _ in got] == [candidates[c] for c in np.argsort(-logits, kind="stable")[:3]]
        assert model.explain(user, got) == fusion_explain_again(model, user, got)  # cached == recomputed credit


def test_fitted_weights_learn_which_source_predicts_and_round_trip(tmp_path) -> None:
    model = fusion()
    # The next item always follows by co-occurrence; text similarity points elsewhere.
    play(model, {f"u{n}": ["a", "d"] for n in range(6)} | {f"v{n}": ["b", "e"] for n in range(6)})
    contexts = [
        UserContext(f"t{n}", (Interaction(first, "click", 1.0),), frozenset({first}))
        for n, first in enumerate("ab" * 4)
    ]
    weights = fit(model, contexts, ["d", "e"] * 4)
    assert weights.meta["with_target"] == 8
    saved = FusionWeights.load(weights.save(tmp_path).parent)
    assert saved is not None and np.allclose(saved.coef, weights.coef) and saved.sources == weights.sources
    model.weights = saved
    assert [model.recommend([c], 1)[0][0][0] for c in contexts[:2]] == ["d", "e"]


def test_the_tail_knob_moves_exposure_monotonically_on_a_fixed_stream() -> None:
    items = synthetic_catalog(200)
    events = list(synthetic_events(5000, 100, 200, seed=3))
    base = CoOccurrence()
    base.update_items(items)
    users: dict[str, list[Interaction]] = {}
    for e in events:
        base.learn(UserContext(e.user_id, tuple(users.get(e.user_id, ()))), Interaction(e.item_id, e.event_type, e.ts))
        users.setdefault(e.user_id, []).append(Interaction(e.item_id, e.event_type, e.ts))
    contexts = [UserContext(u, tuple(w[-10:]), frozenset(i.item_id for i in w)) for u, w in users.items()]
    head = head_items(Counter(e.item_id for e in events))
    tail_shares, coverages = [], []
    for knob in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
        lists = [[i for i, _ in ranked] for ranked in TailRerank(base, knob).recommend(contexts, 10)]
        assert all(len(ranked) == 10 for ranked in lists)
        metrics = exposure(lists, [i.item_id for i in items], head, 10)
        tail_shares.append(metrics["tail_share@10"])
        coverages.append(metrics["coverage@10"])
    assert tail_shares == sorted(tail_shares) and tail_shares[-1] > tail_shares[0] + 0.1, tail_shares
    assert coverages == sorted(coverages) and coverages[-1] > coverages[0], coverages


def test_the_exposure_penalty_fades_with_served_lists() -> None:
    base = fusion()
    play(base, {"u": ["a", "b", "c"]})
    reranker = TailRerank(base, 1.0, half_life_lists=2.0)
    served = [ranked[0][0] for ranked in reranker.recommend([UserContext("v")] * 3, 1)]
    assert served == ["a", "b", "c"]  # trending ties, each pushed down once it has been shown
    assert reranker.exposures(served).tolist() == pytest.approx([2**-1.5, 2**-1, 2**-0.5])  # 3, 2, 1 lists ago
    before = reranker.exposures(list(TITLES)).sum()
    reranker.rerank([], 1)  # an empty list served: time passes, exposure fades
    assert reranker.exposures(list(TITLES)).sum() == pytest.approx(before * 2**-0.5)


def test_trending_decays_by_event_time_not_wall_time() -> None:
    def replay() -> dict[str, float]:
        model = Trending(half_life_s=3600.0)
        for item, ts in (("old", 0.0), ("old", 0.0), ("old", 0.0), ("new", 7200.0)):
            model.learn(UserContext("u"), Interaction(item, "view", ts))
        return dict(model.recommend([UserContext("v")], 2)[0])

    first = replay()
    assert first == {"new": 1.0, "old": pytest.approx(3 * 2**-2)}  # two half-lives of event time
    assert replay() == first  # deterministic: no wall clock involved


def test_trending_stays_finite_across_a_long_replay_and_prefers_the_users_categories() -> None:
    model = Trending(half_life_s=10.0)
    model.update_items(catalog())
    for n, item in enumerate("abcde" * 40):
        model.learn(UserContext("u"), Interaction(item, "view", n * 10.0))  # 200 half-lives: rebases
    assert model.decay.anchor is not None and model.decay.anchor > 0.0
    scores = dict(model.recommend([UserContext("v")], 5)[0])
    assert all(math.isfinite(s) for s in scores.values()) and max(scores, key=scores.__getitem__) == "e"
    jazz_fan = UserContext("w", (Interaction("a", "purchase", 0.0),))
    assert model.recommend([jazz_fan], 1)[0][0][0] == "c"  # newest Jazz item beats the Rock "e"


def test_cooccurrence_half_life_prefers_recent_followers_and_default_is_unchanged() -> None:
    stream = [("x", "old", 0.0)] * 3 + [("x", "new", 100.0)]
    for half_life, expected in ((None, "old"), (10.0, "new")):
        model = CoOccurrence(half_life_s=half_life)
        for first, second, ts in stream:
            model.learn(UserContext("u"), Interaction(first, "view", ts))
            model.learn(UserContext("u", (Interaction(first, "view", ts),)), Interaction(second, "view", ts))
        user = UserContext("v", (Interaction("x", "view", 200.0),), frozenset({"x"}))
        assert model.recommend([user], 1)[0][0][0] == expected


def test_event_weights_setting_and_registry_names() -> None:
    assert parse_event_weights("view=0.5,purchase=8") == {"view": 0.5, "click": 2.0, "purchase": 8.0}
    with pytest.raises(ValueError, match="like"):
        parse_event_weights("like=3")
    settings = Settings.load(env={"STREAMREC_EVENT_WEIGHTS": "view=1,click=1,purchase=1"})
    options = RecommenderOptions.of(settings)
    trending = make_recommender("trending", options)
    assert isinstance(trending, Trending) and trending.weights == {"view": 1.0, "click": 1.0, "purchase": 1.0}
    assert known("fusion+tail") and known("fusion+tail@0.3") and not known("fusion@0.3")
    assert not known("fusion+tail@lots")


def save_toy_artifact(model_dir: Path) -> str:
    """An untrained transformer over `TITLES` (text vectors `VECTORS`); its version."""
    from streamrec.models import artifact
    from streamrec.models.sequence import SequenceConfig, SequenceEncoder

    net = SequenceEncoder(SequenceConfig(n_items=len(TITLES), text_dim=2))
    text = np.vstack([np.zeros((1, 2), np.float32), VECTORS])
    return artifact.save(model_dir, net, list(TITLES), text, "toy").name


def test_hot_reload_swaps_the_artifact_and_keeps_the_exposure_memory(tmp_path) -> None:
    from streamrec.models.fusion import default_sources

    def built() -> TailRerank:
        model = TailRerank(Fusion(default_sources(tmp_path)), 0.5)
        model.update_items(catalog())
        play(model, {f"u{n}": ["a", "b"] for n in range(3)})  # what the worker's log replay does
        return model

    first = save_toy_artifact(tmp_path)
    model = built()
    user = UserContext("w", (Interaction("a", "click", 1.0),), frozenset({"a"}))
    before = model.recommend([user], 3)[0]
    second = save_toy_artifact(tmp_path)
    new = built()
    new.carry_over(model)
    assert (model.version, new.version) == (f"fusion@{first}+tail@0.5", f"fusion@{second}+tail@0.5")
    assert new.exposure is model.exposure
    model.recommend([user], 3)  # served by the old model after `carry_over`, before the swap: counts for the new
    assert new.exposures(list(TITLES)).tolist() == model.exposures(list(TITLES)).tolist()
    assert len(new.recommend([user], 3)[0]) == len(before) == 3
    assert new.explain(user, new.recommend([user], 3)[0])[0]["reason"]


def test_worker_hot_reload_keeps_what_no_log_holds(tmp_path) -> None:
    """The worker rebuilds the model from the catalog and learning logs; the re-ranker's
    exposure memory and the dates items were announced are in neither."""
    import asyncio

    from streamrec.streams.broadcast import Record
    from streamrec.streams.catalog import Catalog
    from streamrec.streams.learning import LearningLog, encode_batch
    from streamrec.streams.model_host import ModelHost

    save_toy_artifact(tmp_path / "models")
    paths = {"data_dir": str(tmp_path / "data"), "model_dir": str(tmp_path / "models")}
    settings = Settings.load(env={}, overrides={**paths, "recommender": "fusion+tail"})
    items, learning = Catalog(), LearningLog()
    processor = ModelHost(
        settings, make_recommender(settings.recommender, RecommenderOptions.of(settings)), items, learning
    )
    announced = {"a": 0, "b": 0, "c": 0, "d": 40 * DAY_S, "e": 40 * DAY_S}  # d, e: once the log is 40 days old
    events = [("a", 0.0), ("b", DAY_S), ("a", 40 * DAY_S), ("e", 50 * DAY_S)]
    for offset, (item_id, ts) in enumerate(events):
        fresh = [Item(i, TITLES[i]) for i, at in announced.items() if at <= ts and i not in items]
        items.on_records([Record(None, encode_item(item), 0, 0, 0) for item in fresh])
        learning.on_records([Record(None, encode_batch(0, [(offset, Interaction(item_id, "view", ts), [])]), 0, 0, 0)])
        processor.follow()
        processor.recommender.recommend([UserContext(f"u{offset}", (Interaction(item_id, "view", ts),))], 2)
    old = processor.recommender
    save_toy_artifact(tmp_path / "models")
    asyncio.run(processor.reload_if_newer())
    new = processor.recommender
    assert isinstance(old, TailRerank) and isinstance(new, TailRerank)
    assert new.version != old.version  # the new artifact
    assert old.exposures(list(TITLES)).any()
    assert new.exposures(list(TITLES)).tolist() == old.exposures(list(TITLES)).tolist()
    assert isinstance(old.base, Fusion) and isinstance(new.base, Fusion)
    assert new.base.first_seen == old.base.first_seen


def test_a_refit_is_a_new_version_that_a_running_worker_hot_reloads(tmp_path) -> None:
    import asyncio

    from streamrec.models.fusion import refit
    from streamrec.streams.catalog import Catalog
    from streamrec.streams.learning import LearningLog
    from streamrec.streams.model_host import ModelHost

    first = save_toy_artifact(tmp_path / "models")
    paths = {"data_dir": str(tmp_path / "data"), "model_dir": str(tmp_path / "models")}
    settings = Settings.load(env={}, overrides={**paths, "recommender": "fusion"})
    model = make_recommender(settings.recommender, RecommenderOptions.of(settings))
    processor = ModelHost(settings, model, Catalog(), LearningLog())
    assert isinstance(processor.recommender, Fusion)
    assert not processor.recommender.weights.meta["fitted"]  # the version has no fusion.json: CombSUM
    log = [
        Event(f"u{n}", item, "click", float(t)) for n in range(6) for t, item in enumerate("adb" if n % 2 else "bec")
    ]
    second = refit(tmp_path / "models", log, catalog()).name
    asyncio.run(processor.reload_if_newer())
    assert processor.version == second != first and processor.stats["model_reloads"] == 1
    assert isinstance(processor.recommender, Fusion)
    assert processor.recommender.version == f"fusion@{second}" and processor.recommender.weights.meta["fitted"]


def test_a_transformer_worker_without_a_model_serves_cooccurrence_with_the_configured_weights(tmp_path) -> None:
    weights = {"view": 1.0, "click": 5.0, "purchase": 9.0}
    model = initial_recommender("transformer", RecommenderOptions(tmp_path, weights))
    assert isinstance(model, CoOccurrence) and model.weights == weights
    with pytest.raises(FileNotFoundError):
        initial_recommender("fusion", RecommenderOptions(tmp_path, weights))  # only the transformer falls back


def test_fusion_serves_the_configured_new_item_boost(tmp_path: Path) -> None:
    encoder = TextEncoder()
    result = train_topic_model(encoder)
    save(tmp_path, result.model, result.vocab.ids, result.text, encoder.model_name, result.metrics)
    boosts = []
    for boost in (0.0, 2.0):
        fusion = make_recommender("fusion", RecommenderOptions(tmp_path, new_item_boost=boost))
        assert isinstance(fusion, Fusion)
        transformer = fusion.sources["transformer"]
        assert isinstance(transformer, TransformerRecommender)
        boosts.append(transformer.boost)
    assert boosts[0] == 0.0 and boosts[1] == pytest.approx(2.0 * result.metrics["id_contribution"])
