"""The loop closes itself: a running ``streamrec trainer run`` follows a replay, promotes a
version after its round, and the worker serves that version without being told."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streamrec.infra.commands.trainer import STATUS_FILE
from streamrec.infra.stack import Stack
from streamrec.models.versions import latest_version
from streamrec.settings import Settings
from streamrec.streams.contracts import encode_event
from streamrec.streams.drift import drift_stream
from streamrec.streams.replay import produce_items, produce_raw, replay
from streamrec.types import Event
from tests.conftest import wait_for
from tests.integration.observe import every_list

pytestmark = pytest.mark.integration

EVENTS = 1500
# A round's training on this small log takes well under a minute; this leaves headroom.
ROUND_TIMEOUT_S = 300.0


def test_the_trainer_promotes_a_version_that_the_worker_then_serves(settings: Settings, tmp_path) -> None:
    stream = drift_stream(n_events=EVENTS, n_users=40, n_items=80, seed=4)
    settings = settings.with_(
        recommender="transformer", model_dir=str(tmp_path / "models"), trainer_every_events=EVENTS, trainer_every_s=1e9
    )
    with Stack(settings) as stack:
        produce_items(stream.items, stack.settings)
        lists, reader = every_list(stack.settings, "trainer-test")
        env = {**os.environ, **stack.settings.as_env()}
        with open(stack.log_dir / "trainer.log", "ab") as log:
            trainer = subprocess.Popen(
                [sys.executable, "-m", "streamrec", "trainer", "run", "--max-rounds", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                replay(stream.events, stack.settings, quiet=True)
                assert trainer.wait(timeout=ROUND_TIMEOUT_S) == 0, (
                    f"trainer failed; see {stack.log_dir / 'trainer.log'}"
                )
            finally:
                if trainer.poll() is None:
                    trainer.kill()
                    trainer.wait()
        version = latest_version(stack.settings.model_dir)
        assert version is not None
        status = orjson.loads((Path(stack.settings.data_dir) / STATUS_FILE).read_bytes())
        assert status["stats"]["promoted"] == 1 and status["last"]["version"] == version
        last = stream.events[-1]
        nudges = (Event(last.user_id, last.item_id, "view", last.ts + n + 1, f"nudge-{n}") for n in range(1000))

        def served() -> bool:
            event = next(nudges)
            produce_raw(stack.settings, stack.settings.topic_events, [(event.user_id, encode_event(event))])
            return any(m["model"] == f"transformer@{version}" for m in lists[-5:])

        assert wait_for(served, 60, every_s=1.0)
        reader.stop()
