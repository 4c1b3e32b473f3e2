"""`streamrec train` on the tiny topic log: an artifact, and the fusion ranker fitted for it."""

from __future__ import annotations

import random
from pathlib import Path

from click.testing import CliRunner

from streamrec.infra.cli import main
from streamrec.models.versions import latest_version
from streamrec.models.fusion import WEIGHTS_FILE, FusionWeights
from streamrec.streams.sources import write_jsonl
from tests.topics import catalog, log


def train(tmp_path: Path, *flags: str, per_user: int = 8) -> Path:
    events = sorted((e for seq in log(random.Random(3)).values() for e in seq[:per_user]), key=lambda e: e.ts)
    write_jsonl(tmp_path / "events.jsonl", events)
    write_jsonl(tmp_path / "items.jsonl", catalog())
    out = tmp_path / "models"
    args = ["train", "--events", str(tmp_path / "events.jsonl"), "--items", str(tmp_path / "items.jsonl")]
    env = {"STREAMREC_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--epochs", "1", *flags], env=env)
    assert result.exit_code == 0, result.output
    return out


def test_train_fits_the_fusion_ranker_for_the_artifact_it_writes(tmp_path: Path) -> None:
    out = train(tmp_path)
    weights = FusionWeights.load(out)
    assert weights is not None and weights.meta["fitted"] and weights.meta["artifact"] == latest_version(out)
    assert weights.meta["with_target"] > 0


def test_no_fusion_writes_the_artifact_only(tmp_path: Path) -> None:
    out = train(tmp_path, "--no-fusion")
    assert latest_version(out) is not None and not (out / WEIGHTS_FILE).exists()


def test_a_log_too_short_to_fit_the_fusion_ranker_still_yields_an_artifact(tmp_path: Path) -> None:
    out = train(tmp_path, per_user=2)  # fitting needs users with 3 events or more
    assert latest_version(out) is not None and not (out / WEIGHTS_FILE).exists()
