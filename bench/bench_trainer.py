"""Why the frozen transformer fades in the stream, and what continual rounds win back.

Prequential simulation (`streamrec.models.online_eval`: the worker's windows, exclusions
and micro-batches, no Kafka) of the scored tail of a log, for:

- ``cooccurrence``: learns every event (the streaming baseline);
- ``frozen``: the transformer trained once on the warm-up part (as the backtest does);
  ``frozen β=0``: the same without the new-item boost; ``frozen, seen excluded``: the
  same with every item the user ever met excluded (offline leave-one-out's masking);
- ``rounds``: continual rounds (`streamrec.models.trainer.run_round`) every ``--every``
  scored events, each candidate promoted only through the gate.

Also: the share of scored targets the frozen vocabulary lacks, and the frozen model's
NDCG@10 on known vs unknown targets. Prints markdown tables (docs/trainer.md).

    python bench/bench_trainer.py --dataset drift
    python bench/bench_trainer.py --dataset ml-100k --every 4000
    python bench/bench_trainer.py --dataset synthetic-drift --every 500   # the backtest's drift log
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence

import click
import numpy as np

from streamrec.models import continual, online_eval
from streamrec.models.artifact import Artifact, load_latest, publish
from streamrec.models.base import Recommender
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.holdout import user_sequences
from streamrec.models.metrics import accuracy
from streamrec.models.online_eval import Outcome, simulate
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.trainer import TrainerConfig, run_round
from streamrec.models.training import TrainConfig
from streamrec.models.transformer import TransformerRecommender
from streamrec.streams.drift import drift_stream
from streamrec.streams.sources import DRIFT, drift_dataset, movielens_events, movielens_items
from streamrec.types import Event, Interaction, Item, Ranked, UserContext

SCORED_SHARE = 0.2  # as `streamrec backtest`
WINDOWS = 8


class SeenExcluded(Recommender):
    """``model`` with every item each user ever met excluded (offline masking, not the worker's)."""

    def __init__(self, model: Recommender) -> None:
        self.model, self.name = model, f"{model.name}, seen excluded"
        self.seen: defaultdict[str, set[str]] = defaultdict(set)

    def learn(self, user: UserContext, interaction: Interaction) -> None:
        self.seen[user.user_id].add(interaction.item_id)
        self.model.learn(user, interaction)

    def update_items(self, items) -> None:
        self.model.update_items(items)

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        widened = [dataclasses.replace(u, exclude=u.exclude | self.seen[u.user_id]) for u in users]
        return self.model.recommend(widened, k)


def load(dataset: str) -> tuple[list[Event], list[tuple[float, Item]], int]:
    """Events in time order, items with release times, and the index where scoring starts."""
    if dataset in ("drift", DRIFT):
        stream = drift_stream() if dataset == "drift" else drift_dataset()
        events = stream.events
        releases = [(stream.released[i.item_id], i) for i in stream.items]
        # "drift": before the first drift (55%); the backtest's dataset: its last 20%.
        cut = int(len(events) * (0.5 if dataset == "drift" else 1 - SCORED_SHARE))
    else:
        events, items = movielens_events(), movielens_items()
        releases = [(float("-inf"), i) for i in items]
        cut = int(len(events) * (1 - SCORED_SHARE))
    return events, releases, cut


def row(name: str, outcomes: list[Outcome], seconds: float) -> str:
    acc = accuracy([o.rank for o in outcomes], (10,))
    fades = " ".join(f"{v:.3f}" for v in online_eval.over_time(outcomes, WINDOWS))
    return f"| {name} | {acc['ndcg@10']:.4f} | {acc['hr@10']:.4f} | {fades} | {seconds:.0f} |"


@click.command()
@click.option("--dataset", type=click.Choice(["drift", DRIFT, "ml-100k"]), default="drift", show_default=True)
@click.option("--every", type=int, default=4000, show_default=True, help="Scored events between rounds.")
@click.option("--history", type=int, default=50_000, show_default=True, help="Events a round trains on at most.")
@click.option("--max-seconds", type=float, default=300.0, show_default=True, help="Time cap of one training run.")
@click.option("--rounds/--no-rounds", "with_rounds", default=True, show_default=True, help="Also run continual rounds.")
@click.option("--variants/--no-variants", default=True, show_default=True, help="Also the frozen model's variants.")
@click.option("--frozen-dir", type=click.Path(file_okay=False), help="Reuse (or save) the frozen model here.")
@click.option("--patience", type=int, help="Warm-start patience (default: continual.FINE_TUNE's).")
@click.option("--batch", type=int, help="Warm-start batch size (default: continual.FINE_TUNE's).")
@click.option("--lr", type=float, help="Warm-start learning rate (default: continual.FINE_TUNE's).")
def main(
    dataset: str,
    every: int,
    history: int,
    max_seconds: float,
    with_rounds: bool,
    variants: bool,
    frozen_dir: str | None,
    patience: int | None,
    batch: int | None,
    lr: float | None,
) -> None:
    """Frozen vs continually trained transformer vs co-occurrence, replayed offline (docs/trainer.md)."""
    events, releases, cut = load(dataset)
    encoder = TextEncoder(cache_dir=".streamrec/text_cache")
    print(f"{dataset}: {len(events):,} events, scored from {cut:,} ({len(events) - cut:,} scored)\n")
    full = dataclasses.replace(continual.FULL, max_seconds=max_seconds)
    tuned = {"patience": patience, "batch_size": batch, "lr": lr}
    fine_tune = dataclasses.replace(
        continual.FINE_TUNE, max_seconds=max_seconds, **{k: v for k, v in tuned.items() if v is not None}
    )
    config = TrainerConfig(history=history, full=full, fine_tune=fine_tune)
    print("| model | NDCG@10 | HR@10 | NDCG@10 over 8 time windows | s |\n|---|---|---|---|---|")
    started = time.monotonic()
    cooccurrence = simulate(CoOccurrence(), events, releases, cut)
    print(row("cooccurrence", cooccurrence, time.monotonic() - started))
    started = time.monotonic()
    art = frozen_model(
        events[:cut], [item for at, item in releases if at <= events[cut - 1].ts], encoder, full, frozen_dir
    )
    train_s = time.monotonic() - started
    models = {"frozen": TransformerRecommender(art, encoder)}
    if variants:
        models |= {
            "frozen β=0": TransformerRecommender(art, encoder, 0.0),
            "frozen, seen excluded": SeenExcluded(TransformerRecommender(art, encoder)),
            "cooccurrence, seen excluded": SeenExcluded(CoOccurrence()),
        }
    results = {}
    for name, model in models.items():
        started = time.monotonic()
        results[name] = simulate(model, events, releases, cut)
        print(row(name, results[name], time.monotonic() - started))
    if with_rounds:
        started = time.monotonic()
        outcomes, decisions, rows = rounds(events, releases, cut, art, encoder, config, every)
        results[f"rounds every {every}"] = outcomes
        print(row(f"rounds every {every}", outcomes, time.monotonic() - started))
        print("\n| round at | kind | promoted | reason | epochs | train s | time cap hit | catch-up best epoch, s |")
        print("|---|---|---|---|---|---|---|---|")
        for at, d in decisions:
            m = d.candidate.metrics
            print(
                f"| {at} | {d.kind} | {d.promoted} | {d.verdict.reason} | {m.get('epochs')}"
                f" | {m.get('train_seconds')} | {d.candidate.capped}"
                f" | {m.get('catch_up_best_epoch', '-')}, {m.get('catch_up_seconds', '-')} |"
            )
    print(f"\nfrozen training: {train_s:.0f} s, {art.metrics}")
    vocab = set(art.item_ids)
    known = [o for o in results["frozen"] if o.item_id in vocab]
    unknown = [o for o in results["frozen"] if o.item_id not in vocab]
    print(f"\nscored targets unknown to the frozen vocabulary: {len(unknown) / len(results['frozen']):.3f}")
    for name, part in (("known", known), ("unknown", unknown)):
        print(f"frozen NDCG@10 on {name} targets: {ndcg(part):.4f} ({len(part)})")
    results["cooccurrence"] = cooccurrence
    for name, outcomes in results.items():
        print(f"{name} NDCG@10 on those unknown targets: {ndcg([o for o in outcomes if o.item_id not in vocab]):.4f}")
    if with_rounds:
        # New items once they have interactions: unknown to the frozen model (text + boost)
        # but learned (an ID row) by the round that scored them; the outcomes align by event.
        learned = [n for n, o in enumerate(outcomes) if rows[n] and o.item_id not in vocab]
        print(f"\nnew items with an ID row from a round ({len(learned)} targets), NDCG@10:")
        for name in ("frozen", f"rounds every {every}", "cooccurrence"):
            print(f"  {name}: {ndcg([results[name][n] for n in learned]):.4f}")


def frozen_model(
    warm: list[Event], items: list[Item], encoder: TextEncoder, config: TrainConfig, folder: str | None
) -> Artifact:
    """The transformer trained once on ``warm`` (as the backtest does), or the one saved in ``folder``."""
    saved = load_latest(folder) if folder else None
    if saved is not None:
        return saved
    fitted = continual.retrain(user_sequences(warm), items, encoder.encode_items(items), None, config)
    art = fitted.artifact(encoder.model_name)
    if folder:
        publish(folder, art)
    return art


def ndcg(outcomes: list[Outcome]) -> float:
    return accuracy([o.rank for o in outcomes], (10,))["ndcg@10"]


def rounds(
    events: list[Event],
    releases: list[tuple[float, Item]],
    cut: int,
    live: Artifact,
    encoder: TextEncoder,
    config: TrainerConfig,
    every: int,
) -> tuple[list[Outcome], list, list[bool]]:
    """Score each span of ``every`` events with the live model, then run a round on all before the next span.

    Also, per outcome: whether its target had an ID row in the model that scored it.
    """
    outcomes, decisions, rows = [], [], []
    for start in range(cut, len(events), every):
        if start > cut:
            items = [item for at, item in releases if at <= events[start - 1].ts]
            decision = run_round(events[max(0, start - config.history) : start], items, live, encoder, config)
            decisions.append((start, decision))
            if decision.promoted:
                live = decision.candidate.artifact(encoder.model_name)
        model = TransformerRecommender(live, encoder)
        span = simulate(model, events[: start + every], releases, start)
        known = set(live.item_ids)
        outcomes += span
        rows += [o.item_id in known for o in span]
    return outcomes, decisions, rows


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
