"""The continual trainer: rounds that warm-start from the live version and promote under a guard.

A **round** (`run_round`) on the events seen so far (a bounded history, oldest first):

1. the newest ``holdout`` events (at most `MAX_HOLDOUT_SHARE` of the history and half of
   what the live version has not learned; none when there is no live model to compare
   with: `held_out`) are set aside; the candidate trains on the rest, by a
   warm start from the live artifact (`models.continual.fine_tune` after `grow`) or, every
   ``full_every`` rounds and when there is no live model, a full retrain;
2. a warm start that no epoch improved on validation is the live model again: kept
   aside unjudged. Otherwise candidate and live model are scored on the held-out events by the prequential
   simulation (`models.online_eval.simulate`, the worker's lists) and judged by
   `models.promotion.judge`;
3. a promoted candidate first catches up on the held-out events (`models.continual.catch_up`:
   one more early-stopped warm start, which keeps the judged weights unless validation on
   the users of those events improves), then becomes a new version (`models.artifact.save`),
   which workers hot-reload; a refused one is kept aside, its reason logged and counted.

The held-out events enter the next round's training. `Trainer` keeps the bounded
history (a sliding window of the newest ``history`` events: the log is never replayed
whole), decides when a round is due (every ``every_events`` new events or
``every_s`` seconds), and counts what rounds did. From a replay loop::

    trainer = Trainer(model_dir, encoder, TrainerConfig(...))
    for chunk in replayed_chunks:
        trainer.observe(chunk)
        if trainer.due(now):
            decision = trainer.round(items)    # writes a version when promoted

>>> Trainer.__name__, TrainerConfig().holdout
('Trainer', 2000)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from streamrec.models import artifact, continual, online_eval, promotion
from streamrec.models.artifact import Artifact
from streamrec.models.continual import Fitted
from streamrec.models.fusion.fitting import NothingToFit, fit_for
from streamrec.models.fusion.weights import WEIGHTS_FILE
from streamrec.models.holdout import user_sequences
from streamrec.models.promotion import Verdict
from streamrec.models.text_encoder import TextEncoder
from streamrec.models.training import TrainConfig
from streamrec.models.transformer import NEW_ITEM_BOOST, TransformerRecommender
from streamrec.types import Event, Item

log = logging.getLogger(__name__)

WARM, FULL = "warm-start", "full"
# A short history still trains on most of itself: the gate takes at most this share.
MAX_HOLDOUT_SHARE = 0.25
# Refused candidates kept in memory for inspection: the newest few, each a whole model.
KEEP_REFUSED = 3
# Scheduling priority a trainer process lowers itself by (0 = the workers' own, 19 = idle).
NICENESS = 10


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    # Events kept (a sliding window): bounds memory and every round's training time.
    history: int = 50_000
    # Newest events held out for the promotion gate: ~10% of ml-100k's scored part,
    # enough users (hundreds) for a per-user interval of useful width.
    holdout: int = 2000
    every_events: int = 5000
    every_s: float = 3600.0
    # A full retrain every this many rounds (0 = never after the first).
    full_every: int = 10
    fine_tune: TrainConfig = continual.FINE_TUNE
    full: TrainConfig = continual.FULL
    stream: online_eval.StreamConfig = online_eval.StreamConfig()
    min_users: int = promotion.MIN_USERS
    new_item_boost: float = NEW_ITEM_BOOST
    # A promoted candidate catches up on the gate's held-out events before it is published
    # (`models.continual.catch_up`): without it every version is a holdout behind the stream.
    catch_up: bool = True
    # Test hook: shuffle every candidate's weights, so a test can watch the gate refuse it.
    degrade: bool = False
    # Fit the fusion weights for every promoted candidate (inside its version); off: carry
    # the live version's over (cheaper, for deployments that serve no fusion).
    refit_fusion: bool = True


@dataclasses.dataclass
class Decision:
    """One round's outcome: what was trained, how it was judged, and where it went."""

    kind: str
    candidate: Fitted
    verdict: Verdict
    version: str | None = None  # the version written, if promoted

    @property
    def promoted(self) -> bool:
        return self.verdict.promote


def run_round(
    history: Sequence[Event],
    items: Sequence[Item],
    live: Artifact | None,
    encoder: TextEncoder,
    config: TrainerConfig = TrainerConfig(),
    full: bool = False,
) -> Decision:
    """Train a candidate on ``history`` minus its newest ``holdout`` events and judge it on them.

    Writes nothing: `Trainer.round` (or a replay loop) saves the candidate when promoted.
    """
    events = sorted(history, key=lambda e: e.ts)
    cut = len(events) - held_out(events, live, config)
    text = encoder.encode_items(items)
    seqs = user_sequences(events[:cut])
    if live is None or full:
        window = {"window": config.stream.window} if live is None else {"window": live.model.config.window}
        candidate, kind = continual.retrain(seqs, items, text, window, config.full), FULL
    else:
        candidate, kind = continual.fine_tune(continual.grow(live, seqs, items, text), seqs, config.fine_tune), WARM
    if candidate.capped:
        log.warning("%s training stopped by its time cap before converging: %s", kind, candidate.metrics)
    if config.degrade:
        candidate = continual.degrade(candidate)
    if live is None:
        return Decision(kind, candidate, Verdict(True, "no live model yet", 0))
    if kind == WARM and candidate.metrics["best_epoch"] == 0 and not config.degrade:
        return Decision(kind, candidate, Verdict(False, "nothing learned: no epoch beat the live weights", 0))
    models = (candidate.artifact(encoder.model_name), live)
    ndcg, live_ndcg = (_held_out_ndcg(model, events, cut, items, encoder, config) for model in models)
    verdict = promotion.judge(ndcg, live_ndcg, min_users=config.min_users)
    if verdict.promote and config.catch_up and not config.degrade:
        candidate = continual.catch_up(
            candidate, user_sequences(events), items, text, encoder.model_name, config.fine_tune
        )
    return Decision(kind, candidate, verdict)


def save(
    decision: Decision,
    model_dir: str | Path,
    encoder: TextEncoder,
    live: Artifact | None = None,
    refit_on: tuple[Sequence[Event], Sequence[Item]] | None = None,
) -> Path:
    """Write the candidate as a new version; the gate's evidence goes into its metrics.

    Fusion weights (``fusion.json``) go inside the version before it is renamed into place,
    so a fusion worker never hot-reloads a transformer with weights fitted for another:
    with ``refit_on`` (events, items) they are fitted for the candidate itself
    (`models.fusion.fitting.fit_for`); otherwise, or when nothing can be fitted, the live
    version's are carried over (fitted for the model the candidate started from, they
    serve it better than none, where fusion would fall back to CombSUM).
    """
    c, v = decision.candidate, decision.verdict
    gate = {
        "gate_users": v.users,
        "gate_ndcg@10": v.candidate,
        "gate_live_ndcg@10": v.live,
        "gate_low": v.low,
        "gate_high": v.high,
    }
    candidate = c.artifact(encoder.model_name, gate)
    path = artifact.publish(model_dir, candidate, _fusion_files(candidate, encoder, live, refit_on))
    decision.version = path.name
    return path


def _fusion_files(
    candidate: Artifact,
    encoder: TextEncoder,
    live: Artifact | None,
    refit_on: tuple[Sequence[Event], Sequence[Item]] | None,
) -> dict[str, str]:
    """``{fusion.json: weights}`` for ``candidate``: refitted, else the live version's, else none."""
    if refit_on is not None:
        try:
            return {WEIGHTS_FILE: fit_for(TransformerRecommender(candidate, encoder), *refit_on).dumps()}
        except NothingToFit as exc:
            log.warning("fusion weights not refitted (%s): carrying the live version's over", exc)
    carried = live.path / WEIGHTS_FILE if live is not None and live.path is not None else None
    return {WEIGHTS_FILE: carried.read_text()} if carried is not None and carried.is_file() else {}


def yield_to_workers(niceness: int = NICENESS) -> None:
    """Lower this process's priority and keep torch on one thread: a trainer shares the cores
    with the workers, so a round slows itself down rather than the stream's freshness.

    A nice value, not ``SCHED_IDLE``: under a sustained backlog the workers use every core,
    and an idle-class trainer would then never finish a round; at nice 10 it still gets
    a small share (`bench/bench_trainer_cost.py` measures what a round costs the worker).
    """
    os.nice(niceness)
    torch.set_num_threads(1)


class Trainer:
    """Bounded history + round schedule + counters, around `run_round` and `save`."""

    def __init__(self, model_dir: str | Path, encoder: TextEncoder, config: TrainerConfig = TrainerConfig()) -> None:
        self.model_dir, self.encoder, self.config = Path(model_dir), encoder, config
        self.history: deque[Event] = deque(maxlen=config.history)
        self.pending = 0  # events observed since the last round
        self.last_round: float | None = None
        self.stats: Counter[str] = Counter()
        self.refused: list[Decision] = []  # kept aside (the newest few), with their reasons
        # Hook: how a promoted candidate is written (`models.challenger.publisher`: as a challenger).
        self.publish = save

    def observe(self, events: Iterable[Event]) -> None:
        for event in events:
            self.history.append(event)
            self.pending += 1

    def due(self, now: float) -> bool:
        """A round is due after ``every_events`` new events, or ``every_s`` seconds with any."""
        if self.last_round is None:
            self.last_round = now
        elapsed = now - self.last_round >= self.config.every_s
        return self.pending >= self.config.every_events or (self.pending > 0 and elapsed)

    def round(self, items: Sequence[Item], now: float = 0.0) -> Decision:
        """Run one round against the latest version on disk; promote or keep aside."""
        live = artifact.load_latest(self.model_dir)
        self.stats["rounds"] += 1
        full = self.config.full_every > 0 and self.stats["rounds"] % self.config.full_every == 0
        decision = run_round(self.history, items, live, self.encoder, self.config, full)
        self.pending, self.last_round = 0, now
        self.stats["capped"] += decision.candidate.capped
        if decision.promoted:
            history = list(self.history)
            refit_on = (history, items) if self.config.refit_fusion else None
            path = self.publish(decision, self.model_dir, self.encoder, live, refit_on)
            self.stats["promoted"] += 1
            log.info("promoted %s (%s): %s", path.name, decision.kind, decision.verdict.reason)
        else:
            self.stats["refused"] += 1
            self.refused = [*self.refused[-(KEEP_REFUSED - 1) :], decision]
            log.warning("candidate kept aside (%s): %s", decision.kind, decision.verdict.reason)
        return decision


def held_out(events: Sequence[Event], live: Artifact | None, config: TrainerConfig) -> int:
    """How many of the newest ``events`` the gate holds out (none without a live model).

    At most ``holdout`` (and `MAX_HOLDOUT_SHARE` of the history), and at most half of the
    events newer than the live version's ``trained_until``: the candidate must train on
    the other half, or it has nothing new to learn. (A fixed 2,000 with rounds every 500
    events trained every candidate on events the live model already knew: the drift
    bench's warm starts "learned nothing", docs/trainer.md.) If the live version knows
    every event of the history (a trainer restarted on an older log), the fixed bound.
    """
    if live is None:
        return 0
    since = live.metrics.get("trained_until")
    fresh = len(events) if since is None else sum(e.ts > since for e in events)
    return min(config.holdout, int(len(events) * MAX_HOLDOUT_SHARE), fresh // 2 if fresh else config.holdout)


def _held_out_ndcg(
    model: Artifact,
    events: Sequence[Event],
    cut: int,
    items: Sequence[Item],
    encoder: TextEncoder,
    config: TrainerConfig,
) -> dict[str, float]:
    """Per-user NDCG@10 of ``model`` on ``events[cut:]``, the lists built as the worker builds them."""
    recommender = TransformerRecommender(model, encoder, config.new_item_boost)
    outcomes = online_eval.simulate(recommender, events, items, cut, config.stream)
    return online_eval.per_user_ndcg(outcomes, config.stream.k)
