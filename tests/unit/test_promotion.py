"""The promotion rule (paired per-user bootstrap) and the rollback that undoes a promotion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamrec.infra.cli import main
from streamrec.models.promotion import MIN_USERS, RETIRED, judge, paired_interval, rollback
from streamrec.models.versions import MANIFEST, latest_version


def _scores(n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {f"u{i}": float(v) for i, v in enumerate(rng.uniform(0, 0.5, n))}


def test_a_clearly_worse_candidate_is_refused_with_its_evidence() -> None:
    live = _scores(200, 1)
    verdict = judge({u: v * 0.5 for u, v in live.items()}, live)
    assert not verdict.promote
    assert verdict.reason.startswith("worse: NDCG@10 -") and "200 users" in verdict.reason
    assert verdict.high < 0 and verdict.delta < 0


def test_a_better_candidate_and_one_equal_within_noise_are_promoted() -> None:
    live = _scores(200, 1)
    assert judge({u: v + 0.05 for u, v in live.items()}, live).promote
    noise = np.random.default_rng(2).normal(0, 0.05, len(live))
    equal = {u: v + d - noise.mean() for (u, v), d in zip(live.items(), noise, strict=True)}
    verdict = judge(equal, live)
    assert verdict.promote and verdict.low < 0 < verdict.high


def test_too_few_users_keep_the_live_model() -> None:
    live = _scores(MIN_USERS - 1, 1)
    verdict = judge({u: v + 0.1 for u, v in live.items()}, live)
    assert not verdict.promote and "too few" in verdict.reason


def test_the_interval_pairs_users_and_ignores_unpaired_ones() -> None:
    low, high, n = paired_interval({"a": 0.3, "b": 0.5, "only-candidate": 1.0}, {"a": 0.2, "b": 0.4, "only-live": 0.0})
    assert n == 2 and low == pytest.approx(0.1) and high == pytest.approx(0.1)


def _versions(root: Path, *names: str) -> None:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / MANIFEST).write_text("{}")


def test_rollback_retires_the_current_version_and_keeps_its_files(tmp_path: Path) -> None:
    _versions(tmp_path, "20260101T000000000000Z-00", "20260102T000000000000Z-00")
    assert rollback(tmp_path) == ("20260102T000000000000Z-00", "20260101T000000000000Z-00")
    assert (tmp_path / f"{RETIRED}20260102T000000000000Z-00" / MANIFEST).is_file()
    assert latest_version(tmp_path) == "20260101T000000000000Z-00"
    assert rollback(tmp_path)[1] is None
    with pytest.raises(FileNotFoundError):
        rollback(tmp_path)


def test_the_rollback_command(tmp_path: Path) -> None:
    _versions(tmp_path, "20260101T000000000000Z-00", "20260102T000000000000Z-00")
    env = {"STREAMREC_MODEL_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["trainer", "rollback"], env=env)
    assert result.exit_code == 0, result.output
    assert "current version: 20260101T000000000000Z-00" in result.output
    CliRunner().invoke(main, ["trainer", "rollback"], env=env)
    result = CliRunner().invoke(main, ["trainer", "rollback"], env=env)
    assert result.exit_code != 0 and "no model version" in result.output
