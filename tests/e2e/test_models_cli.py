"""`streamrec train` / `evaluate` on ml-100k: an artifact the recommender serves, and the target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamrec.infra.cli import main
from streamrec.models.fusion import FusionWeights
from streamrec.models.transformer import TransformerRecommender
from streamrec.models.versions import latest_version
from streamrec.types import Interaction, UserContext

pytestmark = pytest.mark.e2e

# Best peer in docs/peers.md (GRU4Rec, seen items masked).
PEER_HR10, PEER_NDCG10 = 0.1962, 0.1039
# One ml-100k training epoch (one thread, validation included) on a 2-core machine busy
# with other jobs: measured 5-14 s; this leaves headroom.
EPOCH_S = 20.0
# Encoding the catalog's text, fitting the fusion ranker, scoring the held-out users.
AROUND_TRAINING_S = 300.0
# `train` smoke test: a few epochs are enough to write a servable artifact.
TRAIN_EPOCHS = 3
# With the default TrainConfig on ml-100k (seed 2020) validation NDCG@10 peaks at epoch 59
# (measured per epoch: 0.1216, test HR@10 0.2057, NDCG@10 0.1080); later epochs only wait
# out the patience (15). Stopping at 60 keeps the same weights and skips those epochs.
EVALUATE_EPOCHS = 60
# Training budgets (--max-seconds): generous, so the epoch count ends training, never the
# wall clock, and the figures don't depend on load.
TRAIN_BUDGET_S = TRAIN_EPOCHS * EPOCH_S * 2
EVALUATE_BUDGET_S = EVALUATE_EPOCHS * EPOCH_S


@pytest.mark.timeout(TRAIN_BUDGET_S + AROUND_TRAINING_S)
def test_train_writes_an_artifact_the_recommender_serves(tmp_path: Path) -> None:
    out = tmp_path / "models"
    env = {"STREAMREC_DATA_DIR": str(tmp_path / "data")}
    args = ["--epochs", str(TRAIN_EPOCHS), "--max-seconds", str(TRAIN_BUDGET_S)]
    result = CliRunner().invoke(main, ["train", "--dataset", "ml-100k", "--out", str(out), *args], env=env)
    assert result.exit_code == 0, result.output
    version = latest_version(out)
    assert version is not None
    fusion = FusionWeights.load(out / version)  # train also fits the fusion ranker, inside the version
    assert fusion is not None and fusion.meta["fitted"]
    rec = TransformerRecommender.from_dir(out)
    window = (Interaction("50", "purchase", 0.0), Interaction("172", "click", 60.0))
    user = UserContext("1", window, frozenset({"50", "172"}))
    ranked = rec.recommend([user], k=10)[0]
    assert len(ranked) == 10 and not {"50", "172"} & {i for i, _ in ranked}
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def _evaluate(tmp_path: Path) -> dict[str, dict[str, float]]:
    env = {"STREAMREC_DATA_DIR": str(tmp_path / "data")}
    args = ["--epochs", str(EVALUATE_EPOCHS), "--max-seconds", str(EVALUATE_BUDGET_S)]
    result = CliRunner().invoke(main, ["evaluate", "--dataset", "ml-100k", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])["methods"]


@pytest.fixture(scope="module")
def methods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    return _evaluate(tmp_path_factory.mktemp("evaluate"))


# The module's evaluation runs in the set-up of whichever of these tests comes first.
@pytest.mark.timeout(EVALUATE_BUDGET_S + AROUND_TRAINING_S)
def test_evaluate_reports_every_method_and_the_transformer_beats_popularity(methods: dict) -> None:
    assert set(methods) == {"popularity", "cooccurrence", "transformer"}
    keys = {"hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "coverage@10", "gini@10"}
    assert all(set(m) == keys for m in methods.values())
    assert methods["transformer"]["ndcg@10"] > methods["popularity"]["ndcg@10"] * 1.5
    assert methods["transformer"]["coverage@10"] > methods["popularity"]["coverage@10"]


@pytest.mark.timeout(EVALUATE_BUDGET_S + AROUND_TRAINING_S)
def test_transformer_beats_every_peer_on_ml100k(methods: dict) -> None:
    transformer = methods["transformer"]
    assert transformer["hr@10"] > PEER_HR10 and transformer["ndcg@10"] > PEER_NDCG10
