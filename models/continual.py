"""Continual training of the sequence transformer: warm starts from the live version.

A **warm start** takes the live artifact's weights, grows the item vocabulary to the
items of its history, and fine-tunes on a bounded history until validation stops improving. A new
item's ID row starts at **zero**, so its vector starts as exactly what its text predicts,

.. math:: v(i_{new}) = 0 + W\\, text(i_{new}),

the vector the live recommender already served it with (`models.transformer`): growing
the vocabulary changes no score, and training moves the row only as far as the item's
own events justify. (The mean ID row would give every new item the same head start,
popular or not.) A **full retrain** is `models.training.train` from scratch on the same
bounded history, to shed what warm starts accumulate (drift in the ID rows of items no
longer seen, the optimiser's path).

Both stop on validation NDCG@10 (each user's newest training event held out), never on
a fixed epoch count; ``max_seconds`` is only a safety bound, and `Fitted.capped` says
when it cut a run short.

>>> seqs = {"u": [Event("u", i, "view", t) for t, i in enumerate("abc")], "v": [Event("v", "a", "view", 0.0)]}
>>> train_seqs, valid = hold_last(seqs)
>>> {u: [e.item_id for e in evs] for u, evs in train_seqs.items()}, {u: e.item_id for u, e in valid.items()}
({'u': ['a', 'b'], 'v': ['a']}, {'u': 'c'})
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from streamrec.models import training
from streamrec.models.artifact import Artifact, in_memory
from streamrec.models.base import ItemVocab
from streamrec.models.holdout import leave_one_out
from streamrec.models.sequence import SequenceEncoder, encode_events
from streamrec.models.transformer import BOOST_FADE_EVENTS
from streamrec.types import Event, Item

# Fine-tuning starts near a good point, and a short patience stops once the new events are
# absorbed. The step is training's own (3e-3): at 1e-3 the rows of new items, grown from
# zero, barely moved in a round (on the drift bench they then scored NDCG@10 0.206, no
# better than text alone at 0.205; 0.234 at 3e-3: docs/trainer.md); early stopping on
# validation, not a small step, keeps what the live model knows.
# Batch 32, not 128: on a small log (the drift bench: ~330 windows) an epoch at 128 is 3
# optimiser steps and patience 3 stopped rounds before new items' ID rows moved; rounds
# every 500 events gained +8.5% NDCG@10 over frozen at 32 vs +4% at 128 (docs/trainer.md).
FINE_TUNE = training.TrainConfig(epochs=100, patience=3, batch_size=32, lr=3e-3, max_seconds=300.0)
# A full retrain is `streamrec train`'s schedule: on ml-100k a patience of 5 stopped at
# epoch 17 with half the validation NDCG@10 (docs/trainer.md); validation is noisy.
FULL = training.TrainConfig()
# Fewer recent users than this validate a warm start too noisily: validate on all users.
MIN_VALID_USERS = 50


@dataclasses.dataclass
class Fitted:
    """A trained model, its vocabulary (``item_ids[k]`` = ID row ``k + 1``) and text rows."""

    model: SequenceEncoder
    item_ids: list[str]
    text: np.ndarray  # (len(item_ids) + 1, text_dim), row 0 = padding
    metrics: dict[str, float]
    # Rows grown from zero and the events each has learned from, until mature (`Artifact.young`).
    young: dict[str, int] = dataclasses.field(default_factory=dict)

    def artifact(self, text_model: str, metrics: Mapping[str, float] | None = None) -> Artifact:
        """An in-memory artifact of this model (``metrics`` added to its own)."""
        merged = self.metrics | dict(metrics or {})
        return in_memory(self.model, self.item_ids, self.text, text_model, merged, self.young)

    @property
    def capped(self) -> bool:
        """Whether the time cap, not early stopping, ended training."""
        return bool(self.metrics.get("capped", 0.0))


def hold_last(
    seqs: Mapping[str, list[Event]], after: float | None = None
) -> tuple[dict[str, list[Event]], dict[str, Event]]:
    """Each user's newest event held out for validation (`models.holdout.leave_one_out`, one held).

    With ``after``, only users whose newest event is later than ``after`` (if at least
    `MIN_VALID_USERS` are; the others keep it for training): a warm start is validated on
    what changed since the live model's training, not on the targets that model was
    already selected on.
    """
    train_seqs, valid = leave_one_out(seqs, 1)
    recent = {u: e for u, e in valid.items() if after is not None and e.ts > after}
    if len(recent) < MIN_VALID_USERS:
        return train_seqs, valid
    return {u: evs if u in recent else list(seqs[u]) for u, evs in train_seqs.items()}, recent


def grow(artifact: Artifact, seqs: Mapping[str, list[Event]], items: Sequence[Item], item_text: np.ndarray) -> Fitted:
    """The live weights with an ID row (zero) for every item of ``seqs`` the artifact lacks.

    ``item_text[k]`` is the text vector of ``items[k]``; rows of known items keep the
    artifact's. Catalog items without events get no row (`models.training.trained_vocabulary`).
    """
    vocab = ItemVocab(artifact.item_ids)
    active, active_text = training.trained_vocabulary(seqs, items, item_text)
    new = [n for n, item_id in enumerate(active.ids) if item_id not in vocab]
    for n in new:
        vocab.add(active.ids[n])
    text = np.concatenate([artifact.item_text, active_text[[n + 1 for n in new]]])
    config = dataclasses.replace(artifact.model.config, n_items=len(vocab))
    model = SequenceEncoder(config)
    state = {k: v.clone() for k, v in artifact.model.state_dict().items()}
    grown = torch.zeros_like(model.id_emb.weight)
    grown[: len(artifact.item_ids) + 1] = state["id_emb.weight"]
    state["id_emb.weight"] = grown
    model.load_state_dict(state)
    young = artifact.young | {active.ids[n]: 0 for n in new}
    return Fitted(model, list(vocab.ids), text, dict(artifact.metrics), young)


def fine_tune(start: Fitted, seqs: Mapping[str, list[Event]], config: training.TrainConfig = FINE_TUNE) -> Fitted:
    """Train ``start`` further on ``seqs`` (users' events, oldest first); keep the best-validation weights.

    Validation: `hold_last` after ``start``'s ``trained_until``. Events of items outside
    ``start``'s vocabulary are dropped (`grow` it first). ``best_epoch`` 0 means no epoch
    beat the starting weights (the result is ``start`` itself).
    """
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, vocab = copy.deepcopy(start.model), ItemVocab(start.item_ids)
    train_seqs, valid = hold_last(seqs, start.metrics.get("trained_until"))
    encoded = [encode_events(evs, vocab) for evs in train_seqs.values()]
    val_users = [u for u in valid if valid[u].item_id in vocab]
    val_windows = [encode_events(train_seqs[u], vocab) for u in val_users]
    val_targets = (vocab.indices(valid[u].item_id for u in val_users) + 1).tolist()
    text = torch.from_numpy(start.text)
    counts = np.bincount(np.concatenate([s[0] for s in encoded] or [np.zeros(0, np.int64)]), minlength=len(vocab) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best = training.evaluate_windows(model, val_windows, val_targets, text)
    best_state, best_epoch, started, epoch, capped = copy.deepcopy(model.state_dict()), 0, time.monotonic(), 0, False
    for epoch in range(1, config.epochs + 1):
        windows = training._windows(encoded, model.config.window, config.future_span, rng)
        training._epoch(model, optimizer, windows, text, counts, training._type_weights(config), config)
        score = training.evaluate_windows(model, val_windows, val_targets, text)
        if score["ndcg@10"] > best["ndcg@10"]:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        capped = time.monotonic() - started > config.max_seconds
        if epoch - best_epoch >= config.patience or capped:
            break
    model.load_state_dict(best_state)
    model.eval()
    metrics = _metrics(model, val_windows, val_targets, text, best, started) | {
        "best_epoch": best_epoch,
        "epochs": epoch,
        "capped": float(capped and epoch - best_epoch < config.patience),
        "trained_until": _last_ts(seqs),
    }
    young = age_rows(start.young, train_seqs, start.metrics) if best_epoch else dict(start.young)
    return Fitted(model, list(vocab.ids), start.text, metrics, young)


def catch_up(
    candidate: Fitted,
    seqs: Mapping[str, list[Event]],
    items: Sequence[Item],
    item_text: np.ndarray,
    text_model: str,
    config: training.TrainConfig = FINE_TUNE,
) -> Fitted:
    """A gated ``candidate`` warm-started once more on ``seqs``, the gate's held-out events included.

    The gate scores a candidate on the newest events it did not train on; published as
    it is, a version would then never know those events (nor the items released in them)
    until the next round, always a holdout behind the stream. Catching up is one more
    `fine_tune` (after `grow`): validated on each user active since ``candidate``'s
    ``trained_until`` (their newest event, still held out), it keeps ``candidate``'s
    weights unless validation improves. The result carries ``candidate``'s metrics, its
    new ``trained_until``, and the catch-up's ``catch_up_best_epoch`` and ``catch_up_seconds``.
    """
    caught = fine_tune(grow(candidate.artifact(text_model), seqs, items, item_text), seqs, config)
    m = caught.metrics
    extra = {
        "trained_until": m["trained_until"],
        "catch_up_best_epoch": m["best_epoch"],
        "catch_up_seconds": m["train_seconds"],
    }
    return Fitted(caught.model, caught.item_ids, caught.text, candidate.metrics | extra, caught.young)


def retrain(
    seqs: Mapping[str, list[Event]],
    items: Sequence[Item],
    item_text: np.ndarray,
    model_config: Mapping[str, object] | None = None,
    config: training.TrainConfig = FULL,
) -> Fitted:
    """From scratch on ``seqs`` (`models.training.train`, each user's newest event for validation)."""
    train_seqs, valid = hold_last(seqs)
    result = training.train(train_seqs, valid, items, item_text, model_config, config, trained_only=True)
    m = result.metrics
    capped = m["train_seconds"] > config.max_seconds and m["epochs"] - m["best_epoch"] < config.patience
    return Fitted(
        result.model,
        list(result.vocab.ids),
        result.text,
        result.metrics | {"capped": float(capped)},
    )


def degrade(fitted: Fitted, seed: int = 0) -> Fitted:
    """A deliberately broken copy: every weight tensor's values shuffled (the gate's test hook)."""
    model = copy.deepcopy(fitted.model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            flat = param.view(-1)
            flat.copy_(flat[torch.randperm(flat.numel(), generator=generator)])
    return Fitted(model, fitted.item_ids, fitted.text, fitted.metrics | {"degraded": 1.0}, fitted.young)


def age_rows(young: Mapping[str, int], seqs: Mapping[str, list[Event]], metrics: Mapping[str, float]) -> dict[str, int]:
    """``young`` plus each row's training events newer than ``trained_until``; matured rows leave.

    >>> seqs = {"u": [Event("u", "a", "view", t) for t in range(3)] + [Event("u", "b", "view", 9.0)]}
    >>> age_rows({"a": 0, "b": BOOST_FADE_EVENTS - 1}, seqs, {"trained_until": 0.5})
    {'a': 2}
    """
    since = metrics.get("trained_until", float("-inf"))
    learned = Counter(e.item_id for evs in seqs.values() for e in evs if e.ts > since and e.item_id in young)
    aged = {item_id: n + learned[item_id] for item_id, n in young.items()}
    return {item_id: n for item_id, n in aged.items() if n < BOOST_FADE_EVENTS}


def _metrics(
    model: SequenceEncoder,
    windows: training.Windows,
    targets: Sequence[int],
    text: torch.Tensor,
    best: Mapping[str, float],
    started: float,
) -> dict[str, float]:
    """What `models.training.train` reports too: validation scores, the ID contribution, time."""
    return {f"valid_{k}": float(v) for k, v in best.items()} | {
        "id_contribution": training.id_contribution(model, windows, targets, text),
        "train_seconds": round(time.monotonic() - started, 1),
    }


def _last_ts(seqs: Mapping[str, list[Event]]) -> float:
    """The newest event time a model trained on ``seqs`` has seen (validation included)."""
    return max((evs[-1].ts for evs in seqs.values() if evs), default=float("-inf"))
