"""The feedback loop in a running worker: it starts without a model (co-occurrence),
hot-reloads the first artifact written to the model dir without losing state, and a
brand-new item announced on the items topic reaches a user whose events match its text
before anyone has touched it."""

from __future__ import annotations

import random
import time

import orjson
import pytest

from infra.config import Settings
from infra.stack import Stack
from models.artifact import save
from models.text_encoder import TextEncoder
from models.training import TrainConfig, train
from streams.broadcast import TopicReader
from streams.contracts import Event
from streams.replay import produce_items, produce_raw
from tests.conftest import wait_for
from tests.unit.test_transformer_recommender import NEW, _catalog, _log

pytestmark = pytest.mark.integration

FAN = "space-fan"


def write_artifact(model_dir: str) -> str:
    encoder = TextEncoder()
    items = _catalog()
    seqs = _log(random.Random(7))
    result = train(
        {u: evs[:-1] for u, evs in seqs.items()},
        {u: evs[-1] for u, evs in seqs.items()},
        items,
        encoder.encode_items(items),
        {"window": 10, "id_dropout": 0.5, "dropout": 0.1},
        TrainConfig(epochs=15, patience=15, lr=3e-3, batch_size=16),
    )
    return save(model_dir, result.model, result.vocab.ids, result.text, encoder.model_name).name


def test_hot_reload_keeps_state_and_new_items_are_recommendable(settings: Settings, tmp_path) -> None:
    settings = settings.with_(recommender="transformer", model_dir=str(tmp_path / "models"))
    lists: list[dict] = []
    with Stack(settings) as stack:
        produce_items(_catalog(), stack.settings)
        reader = TopicReader(stack.settings.bootstrap_servers, stack.settings.topic_recommendations,
                             lambda rs: lists.extend(orjson.loads(r.value) for r in rs), "reload").start()
        sent = 0

        def send(item_id: str) -> None:
            nonlocal sent
            sent += 1
            event = Event(FAN, item_id, "view", 60.0 * sent, f"fan-{sent}")  # the training log's spacing
            produce_raw(stack.settings, stack.settings.topic_events, FAN, event.to_json())

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
