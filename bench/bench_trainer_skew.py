"""The pipeline gap on the drift stream: which training choice the backtest made costs what.

`streamrec backtest --dataset synthetic-drift` trains the frozen transformer with
`streamrec train` on the warm-up part and announces the **whole catalog** first
(items released later included). This bench trains the same model on the same warm-up
part (the backtest's dataset and cut) and scores it with the prequential simulation
(`streamrec.models.online_eval`, the worker's lists) for:

- ``vocabulary``: ``catalog`` (every catalog item gets an ID row, as `streamrec train`
  did: items never interacted with are trained only as softmax negatives) or ``trained``
  (ID rows only for items with training events; the rest are text-only + new-item boost);
- ``epochs``: a fixed cap (the backtest's ``--train-epochs``) or early stopping alone;
- ``announce``: ``upfront`` (as the backtest) or at release time (as `bench_trainer.py`).

    python bench/bench_trainer_skew.py --epochs 20 --epochs 0
"""

from __future__ import annotations

import dataclasses
import time

import click
import numpy as np

from streamrec.models import continual, online_eval, training
from streamrec.models.artifact import in_memory
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.holdout import user_sequences
from streamrec.models.metrics import accuracy
from streamrec.models.online_eval import Outcome, simulate
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.transformer import TransformerRecommender
from streamrec.streams.sources import drift_dataset

SCORED_SHARE = 0.2  # as `streamrec backtest`
WINDOWS = 8


def row(name: str, outcomes: list[Outcome], extra: str = "") -> str:
    acc = accuracy([o.rank for o in outcomes], (10,))
    fades = " ".join(f"{v:.3f}" for v in online_eval.over_time(outcomes, WINDOWS))
    return f"| {name} | {acc['ndcg@10']:.4f} | {acc['hr@10']:.4f} | {fades} | {extra} |"


@click.command()
@click.option("--epochs", "epoch_caps", type=int, multiple=True, default=(20, 0), help="Epoch caps (0: none).")
@click.option("--max-seconds", type=float, default=600.0, show_default=True, help="Time cap of one training run.")
def main(epoch_caps: tuple[int, ...], max_seconds: float) -> None:
    """Frozen transformer on the backtest's drift dataset: vocabulary x epochs x announcement."""
    stream = drift_dataset()
    events, items = stream.events, stream.items
    cut = int(len(events) * (1 - SCORED_SHARE))
    releases = [(stream.released[i.item_id], i) for i in items]
    encoder = TextEncoder(cache_dir=".streamrec/text_cache")
    text = encoder.encode_items(items)
    train_seqs, valid = continual.hold_last(user_sequences(events[:cut]))
    trained_ids = {e.item_id for evs in train_seqs.values() for e in evs}
    scored_new = np.mean([e.item_id not in trained_ids for e in events[cut:]])
    print(
        f"drift: {len(events):,} events, scored from {cut:,}; scored targets without training events: {scored_new:.3f}"
    )
    print("\n| model | NDCG@10 | HR@10 | NDCG@10 over 8 time windows | training |\n|---|---|---|---|---|")
    print(row("cooccurrence (announced upfront)", simulate(CoOccurrence(), events, items, cut)))
    for cap in epoch_caps:
        config = dataclasses.replace(
            training.TrainConfig(), max_seconds=max_seconds, **({"epochs": cap} if cap else {})
        )
        for vocabulary in ("catalog", "trained"):
            keep = [n for n, item in enumerate(items) if vocabulary == "catalog" or item.item_id in trained_ids]
            started = time.monotonic()
            result = training.train(train_seqs, valid, [items[n] for n in keep], text[keep], None, config)
            m = result.metrics
            fit = (
                f"val NDCG@10 {m['valid_ndcg@10']:.3f}, best epoch {m['best_epoch']} of {m['epochs']},"
                f" {time.monotonic() - started:.0f} s"
            )
            art = in_memory(result.model, result.vocab.ids, result.text, encoder.model_name, m)
            for announce, catalog in (("upfront", items), ("at release", releases)):
                outcomes = simulate(TransformerRecommender(art, encoder), events, catalog, cut)
                name = f"{vocabulary} vocabulary, {'≤' + str(cap) if cap else 'early-stopped'} epochs, {announce}"
                print(row(name, outcomes, fit), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
