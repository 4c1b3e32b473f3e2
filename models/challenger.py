"""Champion/challenger: a gated candidate serves a share of live traffic before it is promoted.

**Files.** Under ``model_dir`` (`models.versions`), a challenger is a complete version
folder in the hidden `TRIAL_DIR` (``.challenger/<version>``), which
`models.versions.latest_version` never picks, and its **trial file** `TRIAL_FILE`
(``challenger.json``), written atomically after the folder is complete and naming the
experiment, the champion (the live version when the trial began), the challenger, and
the challenger's traffic share. Workers poll the file (`read_trial`): while it exists
they serve an `models.experiments.ArmedRecommender` with arms `CHAMPION` (control: the
live version) and `CHALLENGER` (that folder); every list then carries its experiment,
arm and outcome. No version is written while a trial runs (the trainer waits), so the
challenger's name stays the newest.

**Rule** (`models.experiments.decide` on the per-arm `models.experiments.Tally` of those
outcomes): with fewer than `models.experiments.MIN_USERS` users in either arm, wait;
then **promote** iff the lower end of the 95% per-user bootstrap interval of NDCG@10
(challenger minus champion) is at or above ``-MARGIN x`` the champion's NDCG@10
(`models.experiments.MARGIN`, the offline gate's 5%), else **retire**.

**Actions** (`act`): promote renames the folder to ``<model_dir>/<version>``, the newest
version, which workers hot-reload; retire renames it to ``.retired-<version>``
(`models.promotion.RETIRED`). Either way the trial file goes first, so no worker builds
an arm from a folder that has moved. Nothing is deleted.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> v1, v2 = "20261202T100000000000Z-00", "20261202T110000000000Z-00"
>>> (root / TRIAL_DIR / v2).mkdir(parents=True)
>>> trial = start(root, Trial.of(v1, v2, 0.5))
>>> read_trial(root) == trial, trial.experiment("fusion").arms[1].recommender
(True, 'fusion#20261202T110000000000Z-00')
>>> act(root, trial, "retire").name, read_trial(root)
('.retired-20261202T110000000000Z-00', None)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from streamrec.models.experiments import Arm, Experiment, Tally, is_identifier
from streamrec.models.promotion import RETIRED
from streamrec.models.versions import is_version

log = logging.getLogger(__name__)

TRIAL_DIR = ".challenger"
TRIAL_FILE = "challenger.json"
CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTE, RETIRE, WAIT = "promote", "retire", "wait"
# Bootstrap resamples per decision: as the server's summaries (serving.experiments), 500
# keep interval ends within ~0.15 standard errors at half the cost of the default.
RESAMPLES = 500


@dataclasses.dataclass(frozen=True)
class Trial:
    """What the trial file says: the experiment's name, both versions, the challenger's share."""

    name: str
    champion: str
    challenger: str
    share: float

    def __post_init__(self) -> None:
        if isinstance(self.share, bool) or not isinstance(self.share, int | float) or not 0.0 < self.share < 1.0:
            raise ValueError(f"challenger share must be a number in (0, 1), got {self.share!r:.40}")

    @classmethod
    def of(cls, champion: str, challenger: str, share: float) -> Trial:
        """A trial named for its challenger, so each trial assigns users afresh."""
        return cls(f"challenger-{challenger}", champion, challenger, share)

    def experiment(self, recommender: str) -> Experiment:
        """Both arms serve ``recommender``, built from their own version (``spec#version``)."""
        return Experiment(
            self.name,
            (
                Arm(CHAMPION, f"{recommender}#{self.champion}", 1.0 - self.share),
                Arm(CHALLENGER, f"{recommender}#{self.challenger}", self.share),
            ),
        )


def trial_dir(model_dir: str | Path) -> Path:
    """Where challenger versions are written (`models.versions.new_version` under it)."""
    return Path(model_dir) / TRIAL_DIR


def challenger_path(model_dir: str | Path, trial: Trial) -> Path:
    return trial_dir(model_dir) / trial.challenger


def start(model_dir: str | Path, trial: Trial) -> Trial:
    """Write the trial file (atomically); the challenger's folder must be complete."""
    if not challenger_path(model_dir, trial).is_dir():
        raise FileNotFoundError(f"no challenger folder {challenger_path(model_dir, trial)}")
    path = Path(model_dir) / TRIAL_FILE
    tmp = path.with_name(f".{TRIAL_FILE}.{os.getpid()}")
    tmp.write_bytes(orjson.dumps(dataclasses.asdict(trial)))
    tmp.replace(path)
    return trial


def read_trial(model_dir: str | Path) -> Trial | None:
    """The running trial, or None: no file, or one this code cannot read or use (logged:
    workers then serve the champion alone, the trainer decides nothing)."""
    path = Path(model_dir) / TRIAL_FILE
    try:
        return _trial_of(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        log.warning("trial file %s ignored: %s", path, exc)
        return None


def _trial_of(data: Any) -> Trial:
    """The `Trial` a trial file holds; `ValueError` unless it has exactly its fields, a name
    lists can carry and two version names (they become paths under ``model_dir``: no ``..``)."""
    names = [f.name for f in dataclasses.fields(Trial)]
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        raise ValueError(f"expected an object with exactly the fields {names}")
    if not is_identifier(data["name"]):
        raise ValueError(f"name {data['name']!r:.80} is not an experiment name")
    for field in ("champion", "challenger"):
        if not isinstance(data[field], str) or not is_version(data[field]):
            raise ValueError(f"{field} {data[field]!r:.80} is not a version name")
    return Trial(**data)


def act(model_dir: str | Path, trial: Trial, action: str) -> Path:
    """End ``trial``: ``promote`` (the newest version) or ``retire`` (``.retired-``); the new folder."""
    if action not in (PROMOTE, RETIRE):
        raise ValueError(f"a trial ends in {PROMOTE} or {RETIRE}, not {action!r}")
    (Path(model_dir) / TRIAL_FILE).unlink(missing_ok=True)
    name = trial.challenger if action == PROMOTE else f"{RETIRED}{trial.challenger}"
    target = Path(model_dir) / name
    os.rename(challenger_path(model_dir, trial), target)
    return target


class Referee:
    """Tallies the running trial's outcomes from the lists and ends it when `decide` says so.

    Feed it every list's ``(experiment, arm, user_id, seen, items)`` (`add`); `check` decides
    on a summary of the tally and acts. Outcomes of other experiments are ignored.
    """

    def __init__(self, model_dir: str | Path, recommender: str, resamples: int = RESAMPLES) -> None:
        self.model_dir, self.recommender, self.resamples = Path(model_dir), recommender, resamples
        self.trial = read_trial(model_dir)
        self.tally = Tally()
        self.stats: Counter[str] = Counter()
        self.decisions: list[dict[str, Any]] = []  # every decision that ended a trial

    def add(self, experiment: str, arm: str, user_id: str, seen: list[str] | None, items: list[str]) -> None:
        if self.trial is not None and experiment == self.trial.name:
            self.tally.add(arm, user_id, seen, items)

    def refresh(self) -> Trial | None:
        """Re-read the trial file: a new trial (or none) starts a fresh tally."""
        current = read_trial(self.model_dir)
        if current != self.trial:
            self.trial, self.tally = current, Tally()
        return self.trial

    def check(self, catalog_size: int) -> dict[str, Any] | None:
        """Decide on the running trial (None: there is none); promote or retire it if decided."""
        trial = self.refresh()
        if trial is None:
            return None
        summary = self.tally.summary(trial.experiment(self.recommender), catalog_size, resamples=self.resamples)
        arms: Mapping[str, Any] = summary["arms"]
        decision = {"trial": dataclasses.asdict(trial), **arms[CHALLENGER]["decision"]}
        decision["users"] = {arm: row["users"] for arm, row in arms.items()}
        self.stats[f"trial_{decision['action']}"] += 1
        if decision["action"] != WAIT:
            try:
                act(self.model_dir, trial, decision["action"])
            except FileNotFoundError as exc:  # its folder was removed by hand: the trial ends all the same
                log.warning("challenger %s not %sd: %s", trial.challenger, decision["action"], exc)
                decision["failed"] = str(exc)
            log.info("challenger %s: %s (%s)", trial.challenger, decision["action"], decision["reason"])
            self.decisions.append(decision)
            self.trial, self.tally = None, Tally()
        return decision


Publish = Callable[..., Path]


def publisher(save: Publish, share: float, degrade: Callable[[Any], Any] | None = None) -> Publish:
    """A `models.trainer.Trainer.publish` hook: a gated candidate becomes a challenger on
    ``share`` of the traffic (the first model, with no champion, is published as usual).
    ``degrade`` (test hook): break the candidate after the offline gate, so that only the
    online trial can catch it."""

    def publish(decision: Any, model_dir: str | Path, encoder: Any, live: Any = None, refit_on: Any = None) -> Path:
        if live is None:
            return save(decision, model_dir, encoder, live, refit_on)
        if degrade is not None:
            decision.candidate = degrade(decision.candidate)
        path = save(decision, trial_dir(model_dir), encoder, live, refit_on)
        start(model_dir, Trial.of(live.version, path.name, share))
        log.info("challenger %s on %.0f%% of traffic against %s", path.name, 100 * share, live.version)
        return path

    return publish
