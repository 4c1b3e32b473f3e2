"""Trainer rounds without Kafka: warm start, guarded promotion, the degrade hook, bounded memory.

A small drift stream (`streams.drift`) and the real MiniLM encoder; training budgets cut
to a few epochs (early stopping still decides within them).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from streamrec.infra.commands.trainer import Intake
from streamrec.models import continual
from streamrec.models.artifact import Artifact, load_latest
from streamrec.models.fusion.weights import WEIGHTS_FILE, FusionWeights
from streamrec.models.holdout import user_sequences
from streamrec.models.online_eval import UserWindows
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.trainer import FULL, WARM, Trainer, TrainerConfig, held_out
from streamrec.models.training import TrainConfig
from streamrec.models.versions import latest_version
from streamrec.streams.broadcast import Record
from streamrec.streams.contracts import encode_event
from streamrec.streams.drift import DriftStream, drift_stream
from streamrec.streams.state import UserState
from streamrec.types import Event, Item

# Small batches: a tiny log still gives the optimiser enough steps per epoch.
QUICK = TrainConfig(epochs=40, patience=4, batch_size=16, max_seconds=120.0)
CONFIG = TrainerConfig(
    history=5000, holdout=600, every_events=1000, full=QUICK, fine_tune=dataclasses.replace(QUICK, lr=1e-3)
)
# A test's budget: the module's first (full) round and its own round, each at most one
# training time cap, and as long again for encoding, the gate's simulations and fusion refits.
pytestmark = pytest.mark.timeout(2 * 2 * QUICK.max_seconds)


@pytest.fixture(scope="module")
def stream() -> DriftStream:
    return drift_stream(n_events=4000, n_users=60, n_items=160, seed=2)


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


def _released(stream: DriftStream, upto: int) -> list[Item]:
    return [i for i in stream.items if stream.released[i.item_id] <= stream.events[upto - 1].ts]


@pytest.fixture(scope="module")
def first(stream: DriftStream, encoder: TextEncoder, tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    """A trainer whose first round (no live model: a full retrain) promoted version one."""
    trainer = Trainer(tmp_path_factory.mktemp("models"), encoder, CONFIG)
    trainer.observe(stream.events[:2500])
    decision = trainer.round(_released(stream, 2500))
    assert decision.kind == FULL and decision.promoted and decision.version == latest_version(trainer.model_dir)
    return trainer


def _live_version(trainer: Trainer) -> str:
    version = latest_version(trainer.model_dir)
    assert version is not None
    return version


def _live(trainer: Trainer) -> Artifact:
    live = load_latest(trainer.model_dir)
    assert live is not None
    return live


def test_a_warm_start_round_is_judged_on_newer_events_and_promoted(first: Trainer, stream: DriftStream) -> None:
    before = _live_version(first)
    first_vocabulary = set(_live(first).item_ids)
    (first.model_dir / before / WEIGHTS_FILE).write_text('{"fitted": "for the live model"}')
    first.observe(stream.events[2500:3500])
    assert first.due(now=0.0)
    decision = first.round(_released(stream, 3500))
    assert decision.kind == WARM
    assert decision.verdict.users >= CONFIG.min_users
    assert decision.promoted, decision.verdict.reason
    assert latest_version(first.model_dir) == decision.version != before
    assert first.stats["promoted"] == 2 and first.pending == 0
    saved = _live(first)
    assert saved.metrics["gate_users"] == decision.verdict.users
    # Caught up on the gate's held-out events (the newest 500): their items have ID rows,
    # and the version was trained until the newest event, not a holdout behind it.
    assert set(saved.item_ids) >= {e.item_id for e in stream.events[:3500]}
    assert saved.metrics["trained_until"] == stream.events[3499].ts and "catch_up_best_epoch" in saved.metrics
    # Rows grown by this round are young (a fading boost), and only those.
    grown = set(saved.item_ids) - first_vocabulary
    assert saved.young and set(saved.young) <= grown
    assert saved.path is not None
    fusion = FusionWeights.load(saved.path)  # refitted for the candidate, inside its version
    assert fusion is not None and fusion.meta["fitted"] and "transformer" in fusion.sources


def test_a_degraded_candidate_is_refused_and_nothing_is_written(first: Trainer, stream: DriftStream) -> None:
    saboteur = Trainer(first.model_dir, first.encoder, dataclasses.replace(CONFIG, degrade=True))
    saboteur.observe(stream.events[:3800])
    before = latest_version(first.model_dir)
    decision = saboteur.round(_released(stream, 3800))
    assert not decision.promoted and decision.verdict.reason.startswith("worse")
    assert decision.candidate.metrics["degraded"] == 1.0
    assert latest_version(first.model_dir) == before
    assert saboteur.stats["refused"] == 1 and saboteur.refused == [decision]


def test_growing_the_vocabulary_changes_no_score(first: Trainer, stream: DriftStream, encoder: TextEncoder) -> None:
    live = _live(first)
    items = stream.items  # every item, including those released after training
    seqs = user_sequences(stream.events[:3000])  # ... but only those with events get an ID row
    grown = continual.grow(live, seqs, items, encoder.encode_items(items))
    n = len(live.item_ids)
    active = {e.item_id for e in stream.events[:3000]}
    assert grown.item_ids[:n] == live.item_ids and set(grown.item_ids) == set(live.item_ids) | active
    ids = torch.arange(len(grown.item_ids) + 1)
    with torch.inference_mode():
        old = live.model.item_vectors(torch.arange(n + 1), torch.from_numpy(live.item_text))
        new = grown.model.item_vectors(ids, torch.from_numpy(grown.text))
        text_only = grown.model.item_vectors(torch.zeros_like(ids), torch.from_numpy(grown.text))
    assert torch.allclose(new[: n + 1], old)
    assert torch.allclose(new[n + 1 :], text_only[n + 1 :])  # new items: what their text predicts
    assert grown.young == live.young | dict.fromkeys(grown.item_ids[n:], 0)  # ... and keep the whole boost


def test_history_is_a_bounded_sliding_window_and_rounds_fall_due(encoder: TextEncoder, tmp_path: Path) -> None:
    trainer = Trainer(tmp_path, encoder, TrainerConfig(history=100, every_events=50, every_s=10.0))
    events = [Event("u", f"i{n}", "view", float(n)) for n in range(120)]
    assert not trainer.due(now=0.0)
    trainer.observe(events[:10])
    assert not trainer.due(now=5.0) and trainer.due(now=10.0)  # time: any new event, every_s later
    trainer.observe(events[10:])
    assert len(trainer.history) == 100 and trainer.history[0] == events[20]
    assert trainer.due(now=0.0)  # count


def test_the_simulated_windows_are_the_workers(stream: DriftStream) -> None:
    simulated, states = UserWindows(window=7), dict[str, UserState]()
    for offset, event in enumerate(stream.events[:800]):
        simulated.apply(event)
        states.setdefault(event.user_id, UserState(7)).apply(event, offset)
    for user in random.Random(1).sample(sorted(states), 20):
        assert simulated.context(user, exclude_recent=3) == states[user].context(user, exclude_recent=3)


def test_the_intake_keeps_what_the_worker_applies() -> None:
    intake = Intake()
    good = Event("u", "a", "view", 1.0, "e1")
    values = [encode_event(good), encode_event(good), encode_event(Event("u", "zz", "view", 2.0, "e2")), b"{bad"]
    intake.on_records([Record(b"u", v, 0, 0, n) for n, v in enumerate(values)])
    assert intake.drain({"a": Item("a", "A")}) == [good]
    assert intake.rejected == 3 and np.isfinite(intake.rejected)


def test_a_warm_start_validates_on_the_users_active_since_the_live_model() -> None:
    seqs = {
        f"u{n}": [Event(f"u{n}", "a", "view", 0.0), Event(f"u{n}", "b", "view", 10.0 if n < 60 else 1.0)]
        for n in range(100)
    }
    train_seqs, valid = continual.hold_last(seqs, after=5.0)
    assert len(valid) == 60 and len(train_seqs["u0"]) == 1 and len(train_seqs["u99"]) == 2
    assert len(continual.hold_last(seqs, after=20.0)[1]) == 100  # too few recent users: all validate


def test_every_full_every_th_round_retrains_from_scratch_and_is_judged(first: Trainer, stream: DriftStream) -> None:
    trainer = Trainer(first.model_dir, first.encoder, dataclasses.replace(CONFIG, full_every=1))
    trainer.observe(stream.events[:3000])
    decision = trainer.round(_released(stream, 3000))
    assert decision.kind == FULL and decision.verdict.users >= CONFIG.min_users
    assert trainer.stats["promoted"] + trainer.stats["refused"] == 1


def test_the_gate_holds_out_at_most_half_of_what_the_live_version_has_not_learned(
    first: Trainer, stream: DriftStream
) -> None:
    live = _live(first)
    events = stream.events[:3500]
    learned_until = dataclasses.replace(live, manifest=live.manifest | {"metrics": {"trained_until": events[2999].ts}})
    assert held_out(events, learned_until, CONFIG) == 250  # 500 new events: train on 250, judge on 250
    knows_all = dataclasses.replace(live, manifest=live.manifest | {"metrics": {"trained_until": events[-1].ts}})
    assert held_out(events, knows_all, CONFIG) == CONFIG.holdout  # an older log: the fixed bound
    assert held_out(events, None, CONFIG) == 0  # no live model: nothing to judge against
