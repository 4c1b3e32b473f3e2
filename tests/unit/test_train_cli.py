"""`streamrec train` on the tiny topic log: an artifact, and the fusion ranker fitted for it."""

from __future__ import annotations

import random
from pathlib import Path

from click.testing import CliRunner

from streamrec.infra.cli import main
from streamrec.models.artifact import WEIGHTS, load
from streamrec.models.fusion import WEIGHTS_FILE, FusionWeights
from streamrec.streams.sources import write_jsonl
from tests.published import fusion_weights, newest_version
from tests.topics import catalog, log


def write_log(tmp_path: Path, per_user: int = 8) -> list[str]:
    """The tiny topic log as files; the options that read them."""
    events = sorted((e for seq in log(random.Random(3)).values() for e in seq[:per_user]), key=lambda e: e.ts)
    write_jsonl(tmp_path / "events.jsonl", events)
    write_jsonl(tmp_path / "items.jsonl", catalog())
    return ["--events", str(tmp_path / "events.jsonl"), "--items", str(tmp_path / "items.jsonl")]


def train(tmp_path: Path, *flags: str, per_user: int = 8) -> Path:
    out = tmp_path / "models"
    args = ["train", *write_log(tmp_path, per_user)]
    env = {"STREAMREC_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--epochs", "1", *flags], env=env)
    assert result.exit_code == 0, result.output
    return out


def test_train_fits_the_fusion_ranker_inside_the_version_it_writes(tmp_path: Path) -> None:
    out = train(tmp_path)
    weights = fusion_weights(out / newest_version(out))
    assert weights.meta["fitted"] and weights.meta["with_target"] > 0
    assert not (out / WEIGHTS_FILE).exists()  # nothing beside the versions


def test_refit_publishes_a_new_version_with_the_same_transformer(tmp_path: Path) -> None:
    out = train(tmp_path, "--no-fusion")
    first = newest_version(out)
    assert FusionWeights.load(out / first) is None
    args = ["refit", *write_log(tmp_path), "--model-dir", str(out)]
    result = CliRunner().invoke(main, args, env={"STREAMREC_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    second = newest_version(out)
    assert second > first and fusion_weights(out / second).meta["fitted"]
    assert (out / second / WEIGHTS).samefile(out / first / WEIGHTS)  # hard-linked, not retrained
    assert load(out / second).manifest["parent"] == first


def test_refit_without_a_model_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["refit", *write_log(tmp_path), "--model-dir", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "run `streamrec train` first" in result.output


def test_no_fusion_writes_the_artifact_only(tmp_path: Path) -> None:
    out = train(tmp_path, "--no-fusion")
    assert FusionWeights.load(out / newest_version(out)) is None


def test_a_log_too_short_to_fit_the_fusion_ranker_still_yields_an_artifact(tmp_path: Path) -> None:
    out = train(tmp_path, per_user=2)  # fitting needs users with 3 events or more
    assert FusionWeights.load(out / newest_version(out)) is None
