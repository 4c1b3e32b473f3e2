"""Next-item training of `SequenceEncoder` on time-ordered user sequences.

Every position of a window is a target (one forward per window): with user states
``h_t`` and tied item vectors ``v(i)``, the loss over targets ``i_{t+1}`` of type ``e_{t+1}`` is

.. math:: \\mathcal{L} = \\frac{\\sum_t w_{e_{t+1}} \\left(-h_t \\cdot v(i_{t+1})
          + \\log \\sum_j e^{h_t \\cdot v(j)}\\right)}{\\sum_t w_{e_{t+1}}}

(full softmax). Above `SAMPLED_SOFTMAX_ABOVE` items the sum runs over the positive and
`NEGATIVES` items drawn from the training frequency ``q`` instead, every logit corrected
by ``- log q_j`` (logQ correction) so the estimate stays unbiased towards popular items.

Long histories are cut into several windows, with a random offset each epoch. The model
is validated every epoch on each user's second-to-last item (full ranking, seen items
masked) and the best-NDCG@10 weights are kept (early stopping); `models.holdout` splits
the log.

>>> TrainConfig().future_span, _type_weights(TrainConfig()).tolist()
(1, [0.0, 1.0, 1.0, 1.0])
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch.nn import functional as F

from streamrec.models.base import ItemVocab
from streamrec.models.metrics import accuracy, masked_ranks
from streamrec.models.sequence import (
    SequenceConfig,
    SequenceEncoder,
    Window,
    encode_events,
    encode_users,
    gap_buckets,
    pack,
)
from streamrec.types import EVENT_TYPE_INDEX, Event, Item

# Full softmax up to this catalog size; beyond it, sampled softmax with logQ correction.
SAMPLED_SOFTMAX_ABOVE = 50_000
NEGATIVES = 4096
# Validation batch: users per forward pass when scoring the whole catalog.
EVAL_BATCH = 256

# Encoded event windows ``(items, types, ts)`` (`encode_events`), as the model reads them.
Windows = list[Window]
# Training windows ``(inputs, input types, targets, target types, ts)`` (`_windows`).
TrainWindows = list[tuple[np.ndarray, ...]]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # Max epochs, and epochs without a better validation NDCG@10 before stopping. The max
    # is a safety bound, not a schedule: patience (or the time cap) ends training. At 200
    # the 20,000-event drift log (300 users: 3 optimiser steps per epoch) stopped at its
    # best epoch, 200, still improving; ml-100k stops by patience near epoch 50.
    epochs: int = 2000
    patience: int = 15
    batch_size: int = 128
    # Measured on ml-100k: 1e-3 was still improving after 79 epochs, 2e-3 peaked at 48,
    # 3e-3 reaches 2e-3's level in about half the epochs (what a 10-minute budget allows).
    lr: float = 3e-3
    weight_decay: float = 0.1
    # Loss weight per target event type; uniform = every next item counts the same,
    # which is what next-item accuracy measures (EVENT_WEIGHTS would favour purchases).
    type_weights: tuple[tuple[str, float], ...] = (("view", 1.0), ("click", 1.0), ("purchase", 1.0))
    # Target of each position: one of the next `future_span` events, uniformly (1 = next item).
    future_span: int = 1
    seed: int = 2020
    # Wall-clock cap, so a slow machine still returns the best model so far.
    max_seconds: float = 540.0


@dataclasses.dataclass
class TrainResult:
    model: SequenceEncoder
    vocab: ItemVocab  # item_id -> ID row - 1
    text: np.ndarray  # (len(vocab) + 1, text_dim), row 0 = padding
    metrics: dict[str, float]


def train(
    train_seqs: Mapping[str, list[Event]],
    valid: Mapping[str, Event],
    items: Sequence[Item],
    item_text: np.ndarray,
    model_config: Mapping[str, Any] | None = None,
    config: TrainConfig = TrainConfig(),
    trained_only: bool = False,
) -> TrainResult:
    """Fit a `SequenceEncoder` on ``train_seqs``; early-stop on ``valid`` (NDCG@10).

    The vocabulary is ``items`` (in order; ``item_text[k]`` is the text vector of
    ``items[k]``) plus any item seen in training without catalog text (empty text vector);
    with ``trained_only``, only the items of ``train_seqs`` (`trained_vocabulary`). The
    trainer's rounds use the latter, `streamrec train` the former. On the drift log the
    trained vocabulary did better (never-seen catalog rows are only ever negatives, so
    items released later start buried); on ml-100k, where 4 of 1,682 items have no
    training event, the published figures were measured with the catalog one
    (docs/trainer.md, "the pipeline gap").
    """
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    vocab, text = (trained_vocabulary if trained_only else catalog_vocabulary)(train_seqs, items, item_text)
    model = SequenceEncoder(SequenceConfig(n_items=len(vocab), text_dim=text.shape[1], **dict(model_config or {})))
    seqs = [encode_events(evs, vocab) for evs in train_seqs.values()]
    val_users = [u for u in valid if valid[u].item_id in vocab]
    val_windows = [encode_events(train_seqs[u], vocab) for u in val_users]
    val_targets = (vocab.indices(valid[u].item_id for u in val_users) + 1).tolist()
    counts = np.bincount(np.concatenate([s[0] for s in seqs]), minlength=len(vocab) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    text_t, weights = torch.from_numpy(text), _type_weights(config)
    best = {"ndcg@10": -1.0}
    best_state, best_epoch, started = None, 0, time.monotonic()
    with _progress() as progress:
        task = progress.add_task("training", total=config.epochs, info="")
        for epoch in range(1, config.epochs + 1):
            windows = _windows(seqs, model.config.window, config.future_span, rng)
            loss = _epoch(model, optimizer, windows, text_t, counts, weights, config)
            score = evaluate_windows(model, val_windows, val_targets, text_t)
            if score["ndcg@10"] > best["ndcg@10"]:
                best, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
            info = f"loss {loss:.3f} val ndcg@10 {score['ndcg@10']:.4f} (best {best['ndcg@10']:.4f} @ {best_epoch})"
            progress.update(task, advance=1, info=info)
            if epoch - best_epoch >= config.patience or time.monotonic() - started > config.max_seconds:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    metrics = {f"valid_{k}": float(v) for k, v in best.items()} | {
        "id_contribution": id_contribution(model, val_windows, val_targets, text_t),
        "best_epoch": best_epoch,
        "epochs": epoch,
        "train_seconds": round(time.monotonic() - started, 1),
        # The newest event fitted on or validated with: a warm start from this model
        # validates on, and the trainer's gate holds out, only what came after it.
        "trained_until": max((e.ts for evs in (*train_seqs.values(), valid.values()) for e in evs), default=0.0),
    }
    return TrainResult(model, vocab, text, metrics)


def catalog_vocabulary(
    seqs: Mapping[str, list[Event]], items: Sequence[Item], item_text: np.ndarray
) -> tuple[ItemVocab, np.ndarray]:
    """Every catalog item, then items of ``seqs`` without catalog text; their text rows.

    >>> seqs = {"u": [Event("u", "b", "view", 0.0), Event("u", "x", "view", 1.0)]}
    >>> vocab, text = catalog_vocabulary(seqs, [Item("a", "A"), Item("b", "B")], np.eye(2, dtype=np.float32))
    >>> list(vocab.ids), text.tolist()
    (['a', 'b', 'x'], [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    """
    seen = [e.item_id for evs in seqs.values() for e in evs]
    return _vocabulary(items, item_text, range(len(items)), seen)


def trained_vocabulary(
    seqs: Mapping[str, list[Event]], items: Sequence[Item], item_text: np.ndarray
) -> tuple[ItemVocab, np.ndarray]:
    """The items of ``seqs`` (catalog order first) and their text rows (row 0 = padding).

    >>> seqs = {"u": [Event("u", "b", "view", 0.0), Event("u", "x", "view", 1.0)]}
    >>> vocab, text = trained_vocabulary(seqs, [Item("a", "A"), Item("b", "B")], np.eye(2, dtype=np.float32))
    >>> list(vocab.ids), text.tolist()
    (['b', 'x'], [[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    """
    seen = {e.item_id for evs in seqs.values() for e in evs}
    keep = [n for n, item in enumerate(items) if item.item_id in seen]
    return _vocabulary(items, item_text, keep, sorted(seen - {items[n].item_id for n in keep}))


def _vocabulary(
    items: Sequence[Item], item_text: np.ndarray, keep: Sequence[int], others: Iterable[str]
) -> tuple[ItemVocab, np.ndarray]:
    """Catalog items ``keep`` (with their text rows), then ``others`` (empty text rows)."""
    vocab = ItemVocab(items[n].item_id for n in keep)
    for item_id in others:
        vocab.add(item_id)
    text = np.zeros((len(vocab) + 1, item_text.shape[1]), dtype=np.float32)
    text[1 : len(keep) + 1] = item_text[list(keep)]
    return vocab, text


def evaluate_windows(
    model: SequenceEncoder, windows: Windows, targets: Sequence[int], text: torch.Tensor
) -> dict[str, float]:
    """HR/NDCG/MRR@10/20 of full-catalog ranking, each window's own items masked."""
    users, items = user_states(model, windows, text)
    ranks: list[float] = []
    for start in range(0, len(windows), EVAL_BATCH):
        scores = (users[start : start + EVAL_BATCH] @ items[1:].T).numpy()
        banned = [w[0] - 1 for w in windows[start : start + EVAL_BATCH]]
        ranks.extend(masked_ranks(scores, [t - 1 for t in targets[start : start + EVAL_BATCH]], banned))
    return accuracy(ranks)


def id_contribution(model: SequenceEncoder, windows: Windows, targets: Sequence[int], text: torch.Tensor) -> float:
    """Mean ``h_u \\cdot E_{id}[t_u]`` over validation users: what an item's ID adds, on average,
    to the score of the item a user actually picks next (0 with no validation users).

    A new item has no ID row, so its score lacks this part; the recommender adds it back
    (`models.transformer.NEW_ITEM_BOOST`) so new items compete with known ones on text.
    """
    if not windows:
        return 0.0
    users, _ = user_states(model, windows, text)
    with torch.inference_mode():
        return float((users * model.id_emb(torch.as_tensor(targets))).sum(1).mean())


def user_states(model: SequenceEncoder, windows: Windows, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's user vector ``(len(windows), d)`` and the item table (row 0 = padding), in eval mode."""
    model.eval()
    with torch.inference_mode():
        items = model.item_vectors(torch.arange(len(text)), text)
        return encode_users(model, windows, items, EVAL_BATCH), items


def _windows(seqs: Sequence[tuple[np.ndarray, ...]], length: int, span: int, rng: np.random.Generator) -> TrainWindows:
    """Shuffled training windows ``(inputs, input types, targets, target types, ts)``.

    The target of input ``t`` is event ``t + j``, ``j`` uniform in ``1..span`` (clipped at
    the end): with ``span = 1`` the next item; larger spans treat the order of items rated
    close together as noise. Each sequence yields its most recent window plus earlier
    ones every ``length`` events back from a random offset, so long histories are used
    whole and differently each epoch.
    """
    out: TrainWindows = []
    for idx, types, ts in seqs:
        n = len(idx) - 1  # inputs with a target
        if n < 1:
            continue
        ahead = np.minimum(span, n - np.arange(n))
        target = np.arange(n) + 1 + (rng.random(n) * ahead).astype(np.int64)
        fields = (idx[:n], types[:n], idx[target], types[target], ts[:n])
        ends = {n} | set(range(n - int(rng.integers(length)), 0, -length))
        out.extend(tuple(a[max(0, end - length) : end] for a in fields) for end in ends)
    return [out[i] for i in rng.permutation(len(out))]


def _epoch(
    model: SequenceEncoder,
    optimizer: torch.optim.Optimizer,
    windows: TrainWindows,
    text: torch.Tensor,
    counts: np.ndarray,
    weights: torch.Tensor,
    config: TrainConfig,
) -> float:
    model.train()
    length, total, n = model.config.window, 0.0, 0
    for start in range(0, len(windows), config.batch_size):
        inputs, types, targets, target_types, ts = pack(windows[start : start + config.batch_size], length)
        gaps = gap_buckets(ts, types > 0, model.config.gap_buckets)
        items = model.item_vectors(_drop_ids(torch.arange(len(text)), model.config.id_dropout), text)
        hidden = model(items[inputs], types, gaps)
        keep = targets > 0
        loss = _loss(hidden[keep], targets[keep], items, counts)
        w = weights[target_types[keep]]
        loss = (loss * w).sum() / w.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, n = total + loss.item(), n + 1
    return total / max(n, 1)


def _loss(hidden: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, counts: np.ndarray) -> torch.Tensor:
    """Per-target cross-entropy against the item table (row 0 = padding): full or sampled softmax."""
    n_items = len(items) - 1
    if n_items <= SAMPLED_SOFTMAX_ABOVE:
        return F.cross_entropy(hidden @ items[1:].T, targets - 1, reduction="none")
    q = torch.as_tensor(counts[1:] + 1, dtype=torch.float32)
    q = q / q.sum()
    negatives = torch.multinomial(q, NEGATIVES, replacement=True) + 1
    candidates = torch.cat([targets, negatives])
    logits = hidden @ items[candidates].T - torch.log(q[candidates - 1])
    accidental = targets[:, None] == candidates[None, :]
    accidental[torch.arange(len(targets)), torch.arange(len(targets))] = False
    return F.cross_entropy(logits.masked_fill(accidental, -torch.inf), torch.arange(len(targets)), reduction="none")


def _drop_ids(ids: torch.Tensor, rate: float) -> torch.Tensor:
    """Replace a random ``rate`` of ID indices with 0 (text only)."""
    return torch.where(torch.rand(ids.shape) < rate, 0, ids) if rate > 0 else ids


def _type_weights(config: TrainConfig) -> torch.Tensor:
    weights = torch.zeros(len(EVENT_TYPE_INDEX) + 1)
    for name, w in config.type_weights:
        weights[EVENT_TYPE_INDEX[name] + 1] = w
    return weights


def _progress() -> Progress:
    """Progress on stderr, so ``--json`` output on stdout stays parseable."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
    )
