"""Champion/challenger: the trial file, the decision -> action, the publish hook, the worker's swap."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from streamrec.models import challenger
from streamrec.models.challenger import CHALLENGER, CHAMPION, Referee, Trial, act, read_trial, start, trial_dir
from streamrec.models.experiments import MIN_USERS, ArmedRecommender
from streamrec.models.promotion import RETIRED
from streamrec.models.versions import MANIFEST, latest_version, new_version
from streamrec.settings import Settings
from streamrec.streams.catalog import Catalog
from streamrec.streams.learning import LearningLog
from streamrec.streams.model_host import ModelHost, build_recommender
from tests.unit.test_fusion import save_toy_artifact

USERS = MIN_USERS + 10  # per arm: enough for a decision


def _version(model_dir: Path) -> str:
    with new_version(model_dir) as draft:
        (draft.folder / MANIFEST).write_text("{}")
    return draft.version


def _on_trial(model_dir: Path, share: float = 0.5) -> Trial:
    champion = _version(model_dir)
    return start(model_dir, Trial.of(champion, _version(trial_dir(model_dir)), share))


def test_a_challenger_is_no_version_and_its_file_names_both_versions(tmp_path: Path) -> None:
    trial = _on_trial(tmp_path, 0.2)
    assert latest_version(tmp_path) == trial.champion  # the challenger is hidden
    assert read_trial(tmp_path) == trial
    arms = trial.experiment("fusion").arms
    assert [(a.name, a.share) for a in arms] == [(CHAMPION, 0.8), (CHALLENGER, 0.2)]
    (tmp_path / challenger.TRIAL_FILE).write_text("{not json")
    assert read_trial(tmp_path) is None
    with pytest.raises(FileNotFoundError):
        start(tmp_path, Trial.of(trial.champion, "missing", 0.2))
    with pytest.raises(ValueError, match="share"):
        Trial.of("a", "b", 1.0)


def _referee(tmp_path: Path, challenger_hits: bool) -> Referee:
    """A referee with `USERS` users per arm, every champion list hit at rank 1, every
    challenger's hit (as good) or missed (degraded)."""
    referee = Referee(tmp_path, "fusion", resamples=200)
    trial = referee.refresh()
    assert trial is not None
    for n in range(USERS):
        referee.add(trial.name, CHAMPION, f"a{n}", ["x", "y"], ["x"])
        referee.add(trial.name, CHALLENGER, f"b{n}", ["x", "y"], ["x" if challenger_hits else "z"])
        referee.add("another-experiment", CHALLENGER, f"c{n}", ["x"], ["z"])  # ignored
    return referee


def test_a_challenger_as_good_as_the_champion_is_promoted_to_the_newest_version(tmp_path: Path) -> None:
    trial = _on_trial(tmp_path)
    referee = _referee(tmp_path, challenger_hits=True)
    decision = referee.check(catalog_size=3)
    assert decision is not None and decision["action"] == "promote", decision
    assert decision["users"] == {CHAMPION: USERS, CHALLENGER: USERS}
    assert latest_version(tmp_path) == trial.challenger and read_trial(tmp_path) is None
    assert referee.stats["trial_promote"] == 1 and referee.decisions == [decision]
    assert referee.check(catalog_size=3) is None  # nothing runs any more


def test_a_worse_challenger_is_retired_and_the_champion_stays(tmp_path: Path) -> None:
    trial = _on_trial(tmp_path)
    decision = _referee(tmp_path, challenger_hits=False).check(catalog_size=3)
    assert decision is not None and decision["action"] == "retire", decision
    assert latest_version(tmp_path) == trial.champion and read_trial(tmp_path) is None
    assert (tmp_path / f"{RETIRED}{trial.challenger}" / MANIFEST).is_file()


def test_a_challenger_folder_removed_by_hand_ends_the_trial_without_stopping_the_referee(tmp_path: Path) -> None:
    trial = _on_trial(tmp_path)
    referee = _referee(tmp_path, challenger_hits=True)
    shutil.rmtree(challenger.challenger_path(tmp_path, trial))
    decision = referee.check(catalog_size=3)
    assert decision is not None and "failed" in decision
    assert read_trial(tmp_path) is None and latest_version(tmp_path) == trial.champion
    assert referee.check(catalog_size=3) is None


def test_a_small_sample_waits_and_a_new_trial_starts_a_fresh_tally(tmp_path: Path) -> None:
    first = _on_trial(tmp_path)
    referee = Referee(tmp_path, "fusion")
    referee.refresh()
    referee.add(first.name, CHAMPION, "a", ["x"], ["x"])
    decision = referee.check(catalog_size=3)
    assert decision is not None and decision["action"] == "wait" and read_trial(tmp_path) == first
    act(tmp_path, first, "retire")
    second = start(tmp_path, Trial.of(first.champion, _version(trial_dir(tmp_path)), 0.5))
    assert referee.refresh() == second and not referee.tally.arms
    with pytest.raises(ValueError):
        act(tmp_path, second, "wait")


def test_the_publish_hook_writes_gated_candidates_as_challengers(tmp_path: Path) -> None:
    written: list[Path] = []

    def save(decision: Any, model_dir: Path, encoder: Any, live: Any, refit_on: Any) -> Path:
        written.append(Path(model_dir) / _version(Path(model_dir)))
        return written[-1]

    decision = SimpleNamespace(candidate="good")
    publish = challenger.publisher(save, 0.3, degrade=lambda c: f"broken {c}")
    first = publish(decision, tmp_path, None)  # no live model: a plain version
    assert latest_version(tmp_path) == first.name and read_trial(tmp_path) is None
    second = publish(decision, tmp_path, None, SimpleNamespace(version=first.name))
    assert second.parent == trial_dir(tmp_path) and decision.candidate == "broken good"
    assert read_trial(tmp_path) == Trial.of(first.name, second.name, 0.3)
    assert latest_version(tmp_path) == first.name


def test_a_worker_serves_both_arms_during_a_trial_and_the_winner_after(tmp_path: Path) -> None:
    models = tmp_path / "models"
    champion = save_toy_artifact(models)
    settings = Settings.load(
        env={}, overrides={"data_dir": str(tmp_path / "data"), "model_dir": str(models), "recommender": "fusion"}
    )
    host = ModelHost(settings, build_recommender(settings), Catalog(), LearningLog())
    assert not asyncio.run(host.reload_if_newer())
    trial = start(models, Trial.of(champion, save_toy_artifact(trial_dir(models)), 0.5))
    assert asyncio.run(host.reload_if_newer())
    armed = host.recommender
    assert isinstance(armed, ArmedRecommender) and armed.experiment.name == trial.name
    assert armed.arms[CHAMPION].version == f"fusion@{champion}"
    assert armed.arms[CHALLENGER].version == f"fusion@{trial.challenger}"
    assert not asyncio.run(host.reload_if_newer())  # nothing changed
    act(models, trial, "promote")
    assert asyncio.run(host.reload_if_newer())
    assert host.recommender.version == f"fusion@{trial.challenger}" and host.version == trial.challenger
    assert host.trial is None and host.stats["model_reloads"] == 2


def test_with_a_challenger_share_the_degrade_hook_acts_after_the_gate(tmp_path: Path) -> None:
    from streamrec.infra.commands.trainer import challenger_trials, trainer_config

    plain = Settings.load(env={}, overrides={"data_dir": str(tmp_path), "trainer_degrade": 1})
    trial = plain.with_(trainer_challenger_share=0.2)
    assert trainer_config(plain).degrade and not trainer_config(trial).degrade
    assert challenger_trials(plain, SimpleNamespace()) is None


def _host_on(tmp_path: Path) -> tuple[ModelHost, Path, str]:
    """A fusion worker's model host on a toy champion, and the champion's version."""
    models = tmp_path / "models"
    champion = save_toy_artifact(models)
    settings = Settings.load(
        env={}, overrides={"data_dir": str(tmp_path / "data"), "model_dir": str(models), "recommender": "fusion"}
    )
    return ModelHost(settings, build_recommender(settings), Catalog(), LearningLog()), models, champion


BAD_TRIAL_FILES = {
    "empty": b"",
    "truncated": b'{"name": "challenger-x", "champion": ',
    "a list": b"[1, 2]",
    "share as text": b'{"name": "t", "champion": "%(v)s", "challenger": "%(c)s", "share": "0.5"}',
    "share out of range": b'{"name": "t", "champion": "%(v)s", "challenger": "%(c)s", "share": 5}',
    "share true": b'{"name": "t", "champion": "%(v)s", "challenger": "%(c)s", "share": true}',
    "champion traversal": b'{"name": "t", "champion": "../../etc", "challenger": "%(c)s", "share": 0.5}',
    "challenger traversal": b'{"name": "t", "champion": "%(v)s", "challenger": "../%(v)s", "share": 0.5}',
    "version a number": b'{"name": "t", "champion": 7, "challenger": "%(c)s", "share": 0.5}',
    "name a list": b'{"name": ["t"], "champion": "%(v)s", "challenger": "%(c)s", "share": 0.5}',
    "missing challenger folder": b'{"name": "t", "champion": "%(v)s", "challenger": "20990101T000000000000Z-00", "share": 0.5}',
}


@pytest.mark.parametrize("content", BAD_TRIAL_FILES.values(), ids=BAD_TRIAL_FILES.keys())
def test_a_bad_trial_file_is_ignored_with_a_reason_and_the_champion_serves(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    host, models, champion = _host_on(tmp_path)
    contender = save_toy_artifact(trial_dir(models))
    (models / challenger.TRIAL_FILE).write_bytes(content % {b"v": champion.encode(), b"c": contender.encode()})
    for _ in range(2):  # every poll: no crash, no swap
        assert not asyncio.run(host.reload_if_newer())
    assert host.recommender.version == f"fusion@{champion}" and host.trial is None
    assert "trial" in caplog.text or "challenger" in caplog.text


def test_a_trial_file_that_is_a_folder_or_a_corrupt_challenger_keeps_the_champion(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host, models, champion = _host_on(tmp_path)
    (models / challenger.TRIAL_FILE).mkdir()
    assert not asyncio.run(host.reload_if_newer()) and "challenger.json" in caplog.text
    (models / challenger.TRIAL_FILE).rmdir()
    broken = trial_dir(models) / save_toy_artifact(trial_dir(models))
    (broken / MANIFEST).write_text('{"format": 1}')  # a manifest without the fields a load needs
    start(models, Trial.of(champion, broken.name, 0.5))
    assert not asyncio.run(host.reload_if_newer())
    assert host.recommender.version == f"fusion@{champion}" and host.trial is None
    assert broken.name in caplog.text
