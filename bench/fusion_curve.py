"""Fusion and long-tail curve on ml-100k, leave-one-out (the protocol of models/evaluation.py).

Needs a transformer artifact trained on the same split (training = all but each user's
last two events, early stopping on the second-to-last), e.g.::

    python bench/fusion_curve.py --model-dir /tmp/fusion/models --train   # trains it first (~10 min)
    python bench/fusion_curve.py --model-dir /tmp/fusion/models

Steps: feed every source the training events in time order; fit the fusion weights on
the validation positions (window = training events, target = second-to-last item);
score each source, the fusion and ``fusion+tail@knob`` for each knob on the test
positions (window = training + validation events, seen items masked, all items ranked).
Prints a markdown table; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence

import click
import torch

from streamrec.models.base import Recommender
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.evaluation import score, train_transformer
from streamrec.models.fusion import Fusion, default_sources, feature_names, fit
from streamrec.models.holdout import BATCH, feed, holdout_contexts, leave_one_out, user_sequences, validation_contexts
from streamrec.models.metrics import head_items
from streamrec.models.rerank import FETCH, TailRerank
from streamrec.models.trending import DAY_S, Trending
from streamrec.streams.sources import movielens_events, movielens_items
from streamrec.types import EVENT_WEIGHTS, Ranked, UserContext

KNOBS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
# The alternative one-knob re-ranker, measured for comparison: logit - knob * log(1 + P(i)).
POPULARITY_KNOBS = (0.25, 0.5, 0.75, 1.0)
COLUMNS = ("hr@10", "ndcg@10", "hr@20", "coverage@10", "gini@10", "tail_share@10")


class Precomputed(Recommender):
    """Lists computed once (per user id), served again: lets one fusion pass feed every knob."""

    name = "precomputed"

    def __init__(self, lists: dict[str, Ranked]) -> None:
        self.lists = lists

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        return [self.lists[user.user_id][:k] for user in users]


def popularity_penalised(ranked: Ranked, popularity: Counter[str], knob: float) -> Ranked:
    """``z(i) - knob * log(1 + P(i))``, re-sorted."""
    rescored = [(item, score - knob * math.log1p(popularity[item])) for item, score in ranked]
    return sorted(rescored, key=lambda pair: -pair[1])


def lists_of(model: Recommender, contexts: Sequence[UserContext], k: int) -> dict[str, Ranked]:
    out: dict[str, Ranked] = {}
    for start in range(0, len(contexts), BATCH):
        chunk = contexts[start : start + BATCH]
        out.update({user.user_id: ranked for user, ranked in zip(chunk, model.recommend(chunk, k), strict=True)})
    return out


@click.command()
@click.option("--model-dir", required=True, type=click.Path(file_okay=False), help="Transformer versions folder.")
@click.option("--train", is_flag=True, help="Train the transformer on the split first.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results here.")
def main(model_dir: str, train: bool, json_out: str | None) -> None:
    """The fusion's offline accuracy against its sources and the tail-knob curve (ml-100k)."""
    torch.set_num_threads(1)
    events, items = movielens_events(), movielens_items()
    train_seqs, valid, test = leave_one_out(user_sequences(events))
    if train:
        from streamrec.models.artifact import save
        from streamrec.models.text_encoder import TextEncoder

        encoder = TextEncoder()
        trained = train_transformer(train_seqs, valid, items, encoder)
        art = trained.artifact
        save(model_dir, trained.model, art.item_ids, art.item_text, encoder.model_name, art.manifest["metrics"])
    catalog = [item.item_id for item in items]
    head = head_items(Counter(e.item_id for evs in train_seqs.values() for e in evs))
    contexts, targets = holdout_contexts(train_seqs, valid, test)
    fit_contexts, fit_targets = validation_contexts(train_seqs, valid)
    results: dict[str, dict[str, float]] = {}

    started = time.monotonic()
    fusion = Fusion(default_sources(model_dir))
    feed(fusion, train_seqs, items)
    fed_s = time.monotonic() - started
    for name, source in fusion.sources.items():
        results[name] = score(source, contexts, targets, catalog, head)
    extra = {
        "cooccurrence (no decay)": CoOccurrence(),
        "cooccurrence h=30d": CoOccurrence(half_life_s=30 * DAY_S),
        "trending h=1d": Trending(half_life_s=DAY_S),
        "trending h=7d": Trending(half_life_s=7 * DAY_S),
        "trending (no decay)": Trending(half_life_s=None),
    }
    for name, model in extra.items():
        feed(model, train_seqs, items)
        results[name] = score(model, contexts, targets, catalog, head)
    results["fusion (CombSUM, unfitted)"] = score(fusion, contexts, targets, catalog, head)

    started = time.monotonic()
    fusion.weights = fit(fusion, fit_contexts, fit_targets)
    fit_s = time.monotonic() - started
    started = time.monotonic()
    fused = lists_of(fusion, contexts, FETCH)
    rank_ms = (time.monotonic() - started) * 1000 / len(contexts)
    for knob in KNOBS:  # a fresh re-ranker each: exposure counts start at zero
        results[f"fusion+tail@{knob:g}"] = score(TailRerank(Precomputed(fused), knob), contexts, targets, catalog, head)
    popularity = Counter()
    for e in (e for evs in train_seqs.values() for e in evs):
        popularity[e.item_id] += EVENT_WEIGHTS[e.event_type]
    for knob in POPULARITY_KNOBS:
        penalised = {u: popularity_penalised(ranked, popularity, knob) for u, ranked in fused.items()}
        results[f"fusion, popularity penalty {knob:g}"] = score(
            Precomputed(penalised), contexts, targets, catalog, head
        )

    print(f"fed {fed_s:.1f} s, fit {fit_s:.1f} s ({fusion.weights.meta}), fusion {rank_ms:.2f} ms/user")
    print("| method | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, metrics in results.items():
        print(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in COLUMNS) + " |")
    coef = dict(zip(feature_names(fusion.weights.sources), fusion.weights.coef.tolist(), strict=True))
    if json_out:
        with open(json_out, "w") as out:
            json.dump({"results": results, "fit": fusion.weights.meta, "coef": coef}, out, indent=1)


if __name__ == "__main__":
    main()
