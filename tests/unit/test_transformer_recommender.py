"""A new item, known only by its text, reaches the users whose recent events match it.

Tiny synthetic catalog with four distinct text topics, each user staying within one;
a briefly trained model and the real MiniLM encoder.
"""

from __future__ import annotations

import pytest

from models.artifact import in_memory
from models.base import Interaction, UserContext
from models.text_encoder import TextEncoder
from models.transformer import TransformerRecommender
from streams.contracts import Item
from tests.topics import NEW, PER_TOPIC, train_topic_model

@pytest.fixture(scope="module")
def recommender() -> TransformerRecommender:
    encoder = TextEncoder()
    result = train_topic_model(encoder)
    return TransformerRecommender(in_memory(result.model, result.vocab.ids, result.text, encoder.model_name), encoder)


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
