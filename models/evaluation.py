"""Offline evaluation: the peers' protocol (docs/peers.md), every method through `Recommender`.

Protocol: each user's events in time order; the last item is the test target, the
second-to-last the validation target (used only by the transformer, for early stopping),
the rest is training. Every method is asked for its top-20 over **all** items with the
user's training and validation items excluded (masked); its ranks give HR/NDCG/MRR@10,
HR/NDCG@20, and its top-10 lists give coverage, Gini and tail share (`models.metrics`).

Streaming baselines learn the training events in global time order through ``learn``,
each event with the user's window as the stream would have built it; at test time every
method sees the user's last ``window`` training + validation events.

Cold start (`cold_start`): a seeded random 10% of items is removed from all training
data; at test time they are in the catalog with text only. Accuracy is reported on the
test users whose target is one of them (``hr@10``, ``ndcg@10``) and, as the price paid,
on the others (``warm_*``), with the share of top-10 slots new items take; the
transformer for each new-item boost β in `BOOSTS`.

The splits and contexts are `models.holdout`'s.

>>> _cold_metrics([["x", "a"], ["b"]], ["x", "c"], cold={"x"})["hr@10"], KS
(1.0, (10, 20))
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamrec.models.artifact import in_memory
from streamrec.models.base import Recommender
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.holdout import BATCH, feed, holdout_contexts, leave_one_out, user_sequences
from streamrec.models.metrics import accuracy, exposure, head_items, hit_rank
from streamrec.models.popularity import Popularity
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.training import TrainConfig, train
from streamrec.models.transformer import TransformerRecommender
from streamrec.types import Event, Item, UserContext

KS = (10, 20)
# Share of items hidden from training in the cold-start check, and its seed.
COLD_SHARE = 0.1
COLD_SEED = 2020
# New-item boosts β the cold-start check reports (models/transformer.py).
BOOSTS = (0.0, 0.5, 1.0, 1.5)
# Training settings when none are given; TrainConfig is frozen, so one shared default is safe.
DEFAULT_TRAINING = TrainConfig()

Split = tuple[dict[str, list[Event]], dict[str, Event], dict[str, Event]]


def score(
    model: Recommender, contexts: Sequence[UserContext], targets: Sequence[str], catalog: Sequence[str], head: set[str]
) -> dict[str, float]:
    """Accuracy at `KS` and exposure at 10 of ``model``'s top-20 lists."""
    lists: list[list[str]] = []
    for start in range(0, len(contexts), BATCH):
        lists.extend([i for i, _ in ranked] for ranked in model.recommend(contexts[start : start + BATCH], max(KS)))
    ranks = [hit_rank(ranked, target) for ranked, target in zip(lists, targets, strict=True)]
    out = accuracy(ranks, KS)
    del out["mrr@20"]
    return out | exposure(lists, catalog, head, k=min(KS))


def train_transformer(
    train_seqs: Mapping[str, list[Event]],
    valid: Mapping[str, Event],
    items: Sequence[Item],
    encoder: TextEncoder,
    config: TrainConfig = DEFAULT_TRAINING,
    model_config: Mapping[str, Any] | None = None,
) -> TransformerRecommender:
    """Train on ``train_seqs`` (early stopping on ``valid``) and wrap for serving."""
    result = train(train_seqs, valid, items, encoder.encode_items(items), model_config, config)
    artifact = in_memory(result.model, result.vocab.ids, result.text, encoder.model_name, result.metrics)
    return TransformerRecommender(artifact, encoder)


def evaluate(
    events: Sequence[Event],
    items: Sequence[Item],
    encoder: TextEncoder | None,
    config: TrainConfig = DEFAULT_TRAINING,
    methods: Sequence[str] = ("popularity", "cooccurrence", "transformer"),
) -> dict[str, dict[str, float]]:
    """All ``methods`` on the leave-one-out protocol; ``{name: metrics}`` (``encoder``: only
    the transformer needs one)."""
    train_seqs, valid, test = leave_one_out(user_sequences(events))
    contexts, targets = holdout_contexts(train_seqs, valid, test)
    catalog = [item.item_id for item in items]
    head = head_items(Counter(e.item_id for evs in train_seqs.values() for e in evs))
    builders: dict[str, Callable[[], Recommender]] = {
        "popularity": lambda: _fed(Popularity(), train_seqs, items),
        "cooccurrence": lambda: _fed(CoOccurrence(), train_seqs, items),
        "transformer": lambda: train_transformer(train_seqs, valid, items, _required(encoder), config),
    }
    return {name: score(builders[name](), contexts, targets, catalog, head) for name in methods}


def cold_start(
    events: Sequence[Event],
    items: Sequence[Item],
    encoder: TextEncoder,
    config: TrainConfig = DEFAULT_TRAINING,
    share: float = COLD_SHARE,
    seed: int = COLD_SEED,
    boosts: Sequence[float] = BOOSTS,
) -> dict[str, dict[str, float]]:
    """Accuracy on test targets never seen in training (text only), and on the rest."""
    ids = sorted(item.item_id for item in items)
    cold = set(random.Random(seed).sample(ids, round(share * len(ids))))
    train_seqs, valid, test = leave_one_out(user_sequences(events))
    warm_train = {u: [e for e in evs if e.item_id not in cold] for u, evs in train_seqs.items()}
    warm_valid = {u: e for u, e in valid.items() if e.item_id not in cold}
    warm_items = [item for item in items if item.item_id not in cold]
    contexts, targets = holdout_contexts(train_seqs, valid, test)
    artifact = train_transformer(warm_train, warm_valid, warm_items, encoder, config).artifact
    models: dict[str, Recommender] = {"popularity": _fed(Popularity(), warm_train, items)}
    for boost in boosts:
        models[f"transformer β={boost:g}"] = TransformerRecommender(artifact, encoder, boost)
    out = {}
    for name, model in models.items():
        model.update_items(items)
        lists = [[i for i, _ in ranked] for ranked in model.recommend(contexts, max(KS))]
        out[name] = _cold_metrics(lists, targets, cold)
    return out


def _cold_metrics(lists: list[list[str]], targets: Sequence[str], cold: set[str]) -> dict[str, float]:
    """HR/NDCG@10 on cold targets and on warm ones, and the share of top-10 slots cold items take."""
    ranks = [hit_rank(ranked, target) for ranked, target in zip(lists, targets, strict=True)]
    is_cold = [target in cold for target in targets]
    on_cold = accuracy([r for r, c in zip(ranks, is_cold, strict=True) if c], (10,))
    on_warm = accuracy([r for r, c in zip(ranks, is_cold, strict=True) if not c], (10,))
    slots = [i in cold for ranked in lists for i in ranked[:10]]
    return {
        "hr@10": on_cold["hr@10"],
        "ndcg@10": on_cold["ndcg@10"],
        "warm_hr@10": on_warm["hr@10"],
        "warm_ndcg@10": on_warm["ndcg@10"],
        "cold_share@10": sum(slots) / max(len(slots), 1),
        "targets": float(sum(is_cold)),
    }


def _required(encoder: TextEncoder | None) -> TextEncoder:
    if encoder is None:
        raise ValueError("the transformer needs a text encoder")
    return encoder


def _fed(model: Recommender, train_seqs: Mapping[str, list[Event]], items: Sequence[Item]) -> Recommender:
    feed(model, train_seqs, items)
    return model
