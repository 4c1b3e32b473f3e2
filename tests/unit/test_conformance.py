"""Every recommender the registry builds keeps the contract (`models.checks.check_recommender`),
the artifact-based ones on a tiny trained model with fusion weights fitted for it.

The model's text vectors are each topic's direction plus noise instead of MiniLM's: the
contract does not depend on them, and the fixture stays at a few seconds."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from streamrec.models.artifact import in_memory, publish
from streamrec.models.base import Recommender
from streamrec.models.checks import check_recommender
from streamrec.models.fusion import WEIGHTS_FILE, Fusion, fit_for
from streamrec.models.holdout import leave_one_out, user_sequences
from streamrec.models.popularity import Popularity
from streamrec.models.registry import FACTORIES, RecommenderOptions, make_recommender
from streamrec.models.rerank import TailRerank
from streamrec.models.training import TrainConfig, train
from streamrec.models.transformer import TransformerRecommender
from tests.topics import TOPICS, catalog, log

EVENTS = sorted((e for seq in log(random.Random(3)).values() for e in seq), key=lambda e: e.ts)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model version: a transformer trained for a few seconds, and its fusion weights."""
    items = catalog()
    rng = np.random.default_rng(0)
    topic = np.eye(8, dtype=np.float32)[[list(TOPICS).index(item.item_id.split("-")[0]) for item in items]]
    text = topic + 0.1 * rng.standard_normal(topic.shape).astype(np.float32)
    train_seqs, valid = leave_one_out(user_sequences(EVENTS), held=1)
    tiny = {"window": 10, "d": 16, "layers": 1}
    result = train(train_seqs, valid, items, text, tiny, TrainConfig(epochs=3, batch_size=32))
    trained = in_memory(result.model, result.vocab.ids, result.text, "topic-vectors", result.metrics)
    weights = fit_for(TransformerRecommender(trained), EVENTS, items)
    folder = tmp_path_factory.mktemp("models")
    publish(folder, trained, {WEIGHTS_FILE: weights.dumps()})
    return folder


@pytest.mark.parametrize("name", [*FACTORIES, "fusion+tail@0.3"])
def test_every_registered_recommender_keeps_the_contract(name: str, model_dir: Path) -> None:
    options = RecommenderOptions(model_dir)
    check_recommender(lambda: make_recommender(name, options), catalog(), EVENTS)


def test_the_fusion_under_check_uses_the_fitted_weights(model_dir: Path) -> None:
    model = make_recommender("fusion", RecommenderOptions(model_dir))
    assert isinstance(model, Fusion) and model.weights.meta["fitted"]


class Forgetful(TailRerank):
    """A re-ranker that drops its exposure memory on hot reload."""

    def carry_over(self, previous: Recommender) -> None:
        pass


class Moody(Popularity):
    """Scores that depend on how many instances were made before."""

    made = 0

    def __init__(self) -> None:
        super().__init__()
        Moody.made += 1
        self.offset = Moody.made

    def recommend(self, users, k):
        return [[(item, score + self.offset) for item, score in ranked] for ranked in super().recommend(users, k)]


class Shortened(Popularity):
    """Lists one item shorter than its arrays hold: ``recommend`` overridden alone."""

    def recommend(self, users, k):
        return [ranked[:-1] for ranked in super().recommend(users, k)]


def test_the_check_catches_a_lost_memory_a_nondeterministic_model_and_lists_unlike_the_arrays() -> None:
    with pytest.raises(AssertionError, match="loses what carry_over hands it"):
        check_recommender(lambda: Forgetful(Popularity(), knob=2.0))
    check_recommender(lambda: TailRerank(Popularity(), knob=2.0))  # the real one keeps it
    with pytest.raises(AssertionError, match="not deterministic"):
        check_recommender(Moody)
    with pytest.raises(AssertionError, match="recommend_arrays and recommend give different lists"):
        check_recommender(Shortened)
