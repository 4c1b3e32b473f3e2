"""The feedback loop in a running worker: it starts without a model (co-occurrence),
hot-reloads the first artifact written to the model dir without losing state (and each
version `train` and `refit` publish), and a brand-new item announced on the items topic reaches a user whose events match its text
before anyone has touched it."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from streamrec.infra.stack import Stack
from streamrec.models.artifact import save
from streamrec.models.text_encoder import TextEncoder
from streamrec.settings import Settings
from streamrec.streams.contracts import encode_event
from streamrec.streams.replay import produce_items, produce_raw
from streamrec.types import Event
from tests.conftest import wait_for
from tests.integration.observe import every_list
from tests.published import fusion_weights, newest_artifact, newest_version
from tests.topics import GAP_S, NEW, catalog, log, train_topic_model

pytestmark = pytest.mark.integration

FAN = "space-fan"


def write_artifact(model_dir: str) -> str:
    encoder = TextEncoder()
    result = train_topic_model(encoder)
    return save(model_dir, result.model, result.vocab.ids, result.text, encoder.model_name).name


def test_hot_reload_keeps_state_and_new_items_are_recommendable(settings: Settings, tmp_path) -> None:
    settings = settings.with_(recommender="transformer", model_dir=str(tmp_path / "models"))
    with Stack(settings) as stack:
        produce_items(catalog(), stack.settings)
        lists, reader = every_list(stack.settings, "reload")
        sent = 0

        def send(item_id: str) -> None:
            nonlocal sent
            sent += 1
            event = Event(FAN, item_id, "view", GAP_S * sent, f"fan-{sent}")  # the training log's spacing
            produce_raw(stack.settings, stack.settings.topic_events, [(FAN, encode_event(event))])

        for k in range(3):
            send(f"space-{k}")
        assert wait_for(lambda: any(m["user_events"] == 3 for m in lists))
        assert lists[-1]["model"] == "cooccurrence"  # no artifact yet: the fallback serves

        version = write_artifact(stack.settings.model_dir)
        k = 3
        while not wait_for(lambda: lists[-1]["model"] == f"transformer@{version}", 1.0):
            send(f"space-{k % 8}")
            k += 1
            assert k < 60, "worker never reloaded the model"
        assert lists[-1]["user_events"] == sent  # the swap kept every user's state

        for k in range(8):  # the fan has now met every space item there is...
            send(f"space-{k}")
        produce_items([NEW], stack.settings)  # ...until a new one is announced
        time.sleep(1.0)
        send("space-0")
        assert wait_for(lambda: lists[-1]["user_events"] == sent)
        reader.stop()
    recommended = [entry["item_id"] for entry in lists[-1]["items"]]
    assert recommended[0] == NEW.item_id, recommended


def test_feedback_loop_retrains_from_the_event_log(settings: Settings, tmp_path) -> None:
    """Events on the topic -> ``streamrec train --from-broker`` -> the running worker serves it;
    ``streamrec refit --from-broker`` -> a new version, which the worker serves too."""
    from click.testing import CliRunner

    from streamrec.infra.cli import main
    from streamrec.streams.replay import replay

    settings = settings.with_(recommender="transformer", model_dir=str(tmp_path / "models"))
    events = sorted((e for seq in log(random.Random(3)).values() for e in seq), key=lambda e: e.ts)
    with Stack(settings) as stack:
        produce_items(catalog(), stack.settings)
        lists, reader = every_list(stack.settings, "loop")
        replay(events, stack.settings, quiet=True)
        env = {k: v for k, v in stack.settings.as_env().items() if k != "STREAMREC_CONFIG"}
        result = CliRunner().invoke(main, ["train", "--from-broker", "--epochs", "3"], env=env)
        assert result.exit_code == 0, result.output
        version = newest_version(stack.settings.model_dir)
        assert fusion_weights(Path(stack.settings.model_dir) / version).meta["fitted"]  # by train, inside the version
        nudges = (Event("u0", "space-0", "view", 1e6 + n, f"nudge-{n}") for n in range(1000))
        assert wait_for(lambda: _served(stack, next(nudges), lists, version), 60, every_s=1.0)
        result = CliRunner().invoke(main, ["refit", "--from-broker"], env=env)  # same transformer, a new version
        assert result.exit_code == 0, result.output
        refitted = newest_version(stack.settings.model_dir)
        assert refitted > version and fusion_weights(Path(stack.settings.model_dir) / refitted).meta["fitted"]
        assert wait_for(lambda: _served(stack, next(nudges), lists, refitted), 60, every_s=1.0)
        reader.stop()
    assert len(newest_artifact(stack.settings.model_dir).item_ids) == len({e.item_id for e in events})


def _served(stack: Stack, event: Event, lists: list[dict], version: str) -> bool:
    """Nudge the user until a list made by ``version`` appears."""
    produce_raw(stack.settings, stack.settings.topic_events, [(event.user_id, encode_event(event))])
    return any(m["model"] == f"transformer@{version}" for m in lists[-5:])
