"""Champion/challenger on the real broker: a worker serves both arms of a trial from the trial
file, and the trainer's `Trials` tallies their outcomes from the ``recommendations`` topic,
promotes a better challenger and retires a degraded one, with no one telling the worker."""

from __future__ import annotations

import pytest

from streamrec.infra.stack import Stack
from streamrec.infra.trials import Trials
from streamrec.models.challenger import Trial, read_trial, start, trial_dir
from streamrec.models.continual import degrade
from streamrec.models.online_eval import StreamConfig
from streamrec.models.promotion import RETIRED
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.trainer import Decision, TrainerConfig, run_round, save
from streamrec.models.versions import latest_version
from streamrec.settings import Settings
from streamrec.streams.drift import drift_stream
from streamrec.streams.replay import produce_items, replay
from tests.conftest import LONGEST_WAIT_S, STACK_LIFETIME_S, wait_for
from tests.integration.test_trainer_live import ROUND_TIMEOUT_S

pytestmark = pytest.mark.integration

USERS, EVENTS = 200, 6000
# The model trains on the first third; each trial is decided on one of the other two.
TRAIN = EVENTS // 3
# Share of a trial's replayed events whose outcomes must be in before it is decided (the
# worker may apply a few before it swaps the trial in).
IN = 0.9


@pytest.mark.timeout(STACK_LIFETIME_S + ROUND_TIMEOUT_S + 2 * LONGEST_WAIT_S)
def test_a_better_challenger_is_promoted_and_a_degraded_one_retired(settings: Settings, tmp_path) -> None:
    stream = drift_stream(n_events=EVENTS, n_users=USERS, n_items=80, seed=4)
    models = tmp_path / "models"
    settings = settings.with_(recommender="transformer", model_dir=str(models))
    encoder = TextEncoder(cache_dir=tmp_path / "text_cache")
    config = TrainerConfig(stream=StreamConfig(window=settings.window, exclude_recent=settings.exclude_recent))
    trained = run_round(stream.events[:TRAIN], stream.items, None, encoder, config)
    broken = Decision(trained.kind, degrade(trained.candidate), trained.verdict)
    champion = save(broken, models, encoder).name  # a poor champion ...
    better = save(trained, trial_dir(models), encoder).name  # ... and a better challenger
    first = start(models, Trial.of(champion, better, 0.5))
    with Stack(settings) as stack:
        produce_items(stream.items, stack.settings)
        trials = Trials(stack.settings).start()

        def decided(trial: Trial, events: list) -> str:
            """Once the worker serves ``trial``, replay ``events``; decide when their outcomes are in."""
            logs = list(stack.log_dir.glob("worker*.log"))
            assert wait_for(lambda: any(trial.name in p.read_text() for p in logs), LONGEST_WAIT_S, every_s=1.0)
            replay(events, stack.settings, quiet=True)
            assert wait_for(lambda: _tallied(trials) >= IN * len(events), LONGEST_WAIT_S, every_s=1.0)
            decision = trials.referee.check(len(stream.items))
            assert decision is not None, trials.referee.stats
            return str(decision["action"])

        try:
            assert decided(first, stream.events[TRAIN : 2 * TRAIN]) == "promote", trials.referee.decisions
            assert latest_version(models) == better and read_trial(models) is None
            worse = save(broken, trial_dir(models), encoder).name
            second = start(models, Trial.of(better, worse, 0.5))
            assert decided(second, stream.events[2 * TRAIN :]) == "retire", trials.referee.decisions
            assert latest_version(models) == better and (models / f"{RETIRED}{worse}").is_dir()
        finally:
            trials.stop()


def _tallied(trials: Trials) -> int:
    """Events of the running trial tallied so far."""
    trials.drain()
    return int(sum(row[0] for arm in trials.referee.tally.arms.values() for row in arm.sums))
