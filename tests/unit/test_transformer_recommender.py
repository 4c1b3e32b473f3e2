"""A new item, known only by its text, reaches the users whose recent events match it.

Tiny synthetic catalog with four distinct text topics, each user staying within one;
a briefly trained model and the real MiniLM encoder.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from streamrec.models.artifact import in_memory
from streamrec.models.evaluation import cold_start
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.training import TrainConfig, TrainResult
from streamrec.models.transformer import BOOST_FADE_EVENTS, TransformerRecommender, young_boost
from streamrec.types import Interaction, Item, UserContext
from tests.topics import NEW, PER_TOPIC, catalog, log, train_topic_model


@pytest.fixture(scope="module")
def trained() -> TrainResult:
    return train_topic_model(TextEncoder())


@pytest.fixture(scope="module")
def recommender(trained: TrainResult) -> TransformerRecommender:
    encoder = TextEncoder()
    artifact = in_memory(trained.model, trained.vocab.ids, trained.text, encoder.model_name)  # no metrics: no boost
    return TransformerRecommender(artifact, encoder)


def _user(topic: str, seen: int = PER_TOPIC) -> UserContext:
    """A user who has seen the first ``seen`` items of ``topic``."""
    window = tuple(Interaction(f"{topic}-{k}", "view", 60.0 * k) for k in range(seen))
    return UserContext(f"fan-of-{topic}", window, exclude=frozenset(i.item_id for i in window))


def test_new_item_is_recommended_from_text_alone_to_matching_users(recommender: TransformerRecommender) -> None:
    before = recommender.recommend([_user("space")], k=3)[0]
    assert NEW.item_id not in [i for i, _ in before]
    recommender.update_items([NEW])
    space, food = recommender.recommend([_user("space"), _user("food", seen=4)], k=4)
    assert space[0][0] == NEW.item_id  # every other space item is excluded as seen
    assert sorted(i for i, _ in food) == [f"food-{k}" for k in range(4, PER_TOPIC)]
    hits = [i for i, _ in recommender.search("astronauts exploring a galaxy", 3)]
    assert len(hits) == 3 and all(i.startswith(("space-", NEW.item_id)) for i in hits)


def test_unavailable_items_are_never_recommended(recommender: TransformerRecommender) -> None:
    user = UserContext("u", (Interaction("food-0", "view", 0.0),), exclude=frozenset({"food-0"}))
    top = recommender.recommend([user], k=1)[0][0][0]
    recommender.update_items([Item(top, "gone", available=False)])
    try:
        assert top not in [i for i, _ in recommender.recommend([user], k=40)[0]]
        assert top not in [i for i, _ in recommender.similar("food-0", 40)]
    finally:
        recommender.update_items([Item(top, "back", available=True)])
    assert recommender.recommend([user], k=1)[0][0][0] == top


def test_version_names_the_artifact(recommender: TransformerRecommender) -> None:
    assert recommender.version == "transformer@memory"


def test_stored_user_vector_is_used_instead_of_the_window(recommender: TransformerRecommender) -> None:
    food_vector = recommender.embed([_user("food")])[0]
    jazz = _user("jazz")
    as_food = UserContext(jazz.user_id, jazz.window, jazz.exclude, vector=food_vector)
    assert recommender.recommend([as_food], k=1)[0][0][0].startswith("food")


def _boosted(recommender: TransformerRecommender, id_contribution: float, boost: float) -> TransformerRecommender:
    artifact = recommender.artifact
    manifest = {**artifact.manifest, "metrics": {"id_contribution": id_contribution}}
    boosted = TransformerRecommender(dataclasses.replace(artifact, manifest=manifest), recommender.encoder, boost)
    boosted.update_items([NEW])
    return boosted


def test_new_item_boost_adds_beta_times_the_id_contribution(recommender: TransformerRecommender) -> None:
    user = _user("food", seen=2)
    plain, boosted = (_boosted(recommender, 0.4, beta) for beta in (0.0, 2.5))
    everything = len(plain.catalog.ids)
    before, after = (dict(r.recommend([user], everything)[0]) for r in (plain, boosted))
    assert after[NEW.item_id] == pytest.approx(before[NEW.item_id] + 2.5 * 0.4, abs=1e-4)
    assert all(after[i] == pytest.approx(s, abs=1e-5) for i, s in before.items() if i != NEW.item_id)
    assert plain.similar("space-0", 5) == boosted.similar("space-0", 5)  # similarity ignores the boost


def test_a_row_grown_from_zero_keeps_a_fading_share_of_the_boost(recommender: TransformerRecommender) -> None:
    user = _user("food", seen=2)
    artifact = recommender.artifact
    young = {"space-5": 0, "space-6": BOOST_FADE_EVENTS // 4, "space-7": BOOST_FADE_EVENTS}
    manifest = {**artifact.manifest, "metrics": {"id_contribution": 0.4}, "young_rows": young}
    grown = TransformerRecommender(dataclasses.replace(artifact, manifest=manifest), recommender.encoder, 2.0)
    plain = TransformerRecommender(artifact, recommender.encoder)  # the module's may hold items added since
    everything = len(plain.catalog.ids)
    before, after = (dict(r.recommend([user], everything)[0]) for r in (plain, grown))
    for item_id, events in young.items():  # 2.0 * 0.4 in full at birth, 3/4 of it, none when mature
        assert after[item_id] == pytest.approx(before[item_id] + 0.8 * young_boost(events), abs=1e-4)
    assert all(after[i] == pytest.approx(s, abs=1e-5) for i, s in before.items() if i not in young)


def test_training_measures_the_id_contribution(trained: TrainResult) -> None:
    contribution = trained.metrics["id_contribution"]
    assert np.isfinite(contribution) and contribution != 0.0


def test_cold_start_check_new_items_take_more_slots_as_the_boost_grows() -> None:
    seqs = log(random.Random(3))
    events = [e for evs in seqs.values() for e in evs]
    config = TrainConfig(epochs=10, patience=10, batch_size=16)
    result = cold_start(events, catalog(), TextEncoder(), config, share=0.25, boosts=(0.0, 1.0, 3.0))
    shares = [result[f"transformer β={b:g}"]["cold_share@10"] for b in (0.0, 1.0, 3.0)]
    assert shares == sorted(shares) and shares[-1] > shares[0]
    assert result["popularity"]["hr@10"] == 0.0 < result["transformer β=3"]["hr@10"]
