"""``GET /v1/experiments``: each running A/B experiment's arms, from the outcomes on the lists.

Every list a worker publishes during an experiment carries its ``experiment``, ``arm``
and ``outcome`` (the list the user had seen, the items they acted on since:
`streams.arms`). The server's list reader hands each valid list here, and `Board`
tallies the outcomes per arm and per user (`models.experiments.Tally`), so the
summaries have per-user bootstrap intervals. Summaries cost a bootstrap, so one is
computed at most every `SUMMARY_EVERY_S` (longer if it is slow) and shared; each is
kept in a short history (the dashboard's "over time" chart).

Experiments the server's own settings define are summarised with their shares and
control; one it only sees on lists gets its arms in first-seen order (the first is taken
as control), each with the model its lists name.

>>> from streamrec.settings import Settings
>>> board = Board(Settings(experiment="t=a:popularity,b:cooccurrence"))
>>> board.summary(catalog_size=10, now=0.0)["experiments"]["t"]["arms"]["a"]["users"]
0
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from streamrec.models.experiments import MAX_ARMS, Arm, Experiment, Tally, parse_experiment
from streamrec.settings import Settings
from streamrec.streams.contracts import RecommendationMessage

# A summary is a bootstrap: recomputed at most this often, whatever the polling, and
# never taking more than 1 / `BUSY_FACTOR` of the time (2-7 s for two arms of 2,500 users
# on a loaded 2-core machine: bench/bench_intervals.py).
SUMMARY_EVERY_S = 5.0
BUSY_FACTOR = 10.0
# Summaries kept for the charts (an hour at one per `SUMMARY_EVERY_S`).
HISTORY = 720
# Resamples per summary: 500 keeps interval ends within ~0.15 standard errors, at half the cost.
RESAMPLES = 500
# Experiments tallied at once, the configured one always among them: each champion/challenger
# trial is a new one, and so is any name a list carries; the least recently listed goes first.
MAX_EXPERIMENTS = 8
# What the history keeps per arm (the full summary is in the latest one).
CHARTED = ("ndcg@10", "hr@10", "coverage@10")


class Board:
    """Per-arm outcomes of every experiment seen on the lists, and their summaries."""

    def __init__(self, settings: Settings) -> None:
        self.configured = parse_experiment(settings.experiment) if settings.experiment else None
        self.tallies: dict[str, Tally] = {}  # least recently listed first
        self.ignored = 0  # lists of arms no experiment here can have
        self.models: dict[str, dict[str, str]] = {}  # experiment -> arm -> model named by its lists
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._latest: dict[str, Any] | None = None
        self._next_at = 0.0
        self._lock = threading.Lock()

    def on_message(self, message: RecommendationMessage) -> None:
        """Tally a list's outcome, if it carries one an experiment can have (`_admits`)."""
        if message.experiment is None or message.arm is None or message.outcome is None:
            return
        name, arm = message.experiment, message.arm
        with self._lock:
            if not self._admits(name, arm):
                self.ignored += 1
                return
            self.models.setdefault(name, {}).setdefault(arm, message.model)
            tally = self.tallies[name] = self.tallies.pop(name) if name in self.tallies else Tally()  # newest last
            tally.add(arm, message.user_id, message.outcome.seen, message.outcome.items)
            if len(self.tallies) > MAX_EXPERIMENTS:
                oldest = next(n for n in self.tallies if self.configured is None or n != self.configured.name)
                del self.tallies[oldest], self.models[oldest]

    def _admits(self, name: str, arm: str) -> bool:
        """The configured experiment's own arms; at most `MAX_ARMS` of another (its first lists')."""
        if self.configured is not None and name == self.configured.name:
            return any(a.name == arm for a in self.configured.arms)
        arms = self.models.get(name, {})
        return arm in arms or len(arms) < MAX_ARMS

    def experiment(self, name: str) -> Experiment:
        if self.configured is not None and self.configured.name == name:
            return self.configured
        arms = self.models.get(name, {})
        return Experiment(name, tuple(Arm(arm, model, 1.0 / len(arms)) for arm, model in arms.items()))

    def summary(self, catalog_size: int, now: float | None = None) -> dict[str, Any]:
        """Every experiment's summary (`models.experiments.Tally.summary`) and the history."""
        now = time.time() if now is None else now
        with self._lock:
            if self._latest is None or now >= self._next_at:
                started = time.monotonic()
                names = {*self.tallies, *([self.configured.name] if self.configured else [])}
                experiments = {
                    name: self.tallies.get(name, Tally()).summary(
                        self.experiment(name), catalog_size, resamples=RESAMPLES
                    )
                    for name in sorted(names)
                }
                self._latest = {"at": now, "experiments": experiments}
                self.history.append({"at": now, "experiments": _charted(experiments)})
                self._next_at = now + max(SUMMARY_EVERY_S, BUSY_FACTOR * (time.monotonic() - started))
            return {**self._latest, "history": list(self.history)}


def _charted(experiments: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {arm: {m: row[m] for m in CHARTED} for arm, row in summary["arms"].items()}
        for name, summary in experiments.items()
    }
