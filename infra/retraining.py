"""The continual trainer's path inside a backtest replay (``streamrec backtest --retrain-every N``).

A ``<name>+retrain`` run replays the log like ``<name>`` but starts from its own copy of
the model folder, and every ``every`` scored events released by the gate it pauses:

1. wait until every list of the events released so far was published (nothing in flight);
2. run a trainer round (`models.trainer.Trainer.round`) on the events **already replayed**
   (warm-up and scored so far, the newest ``trainer_history``): never on the scored future;
3. when the candidate is promoted (a new version, fusion weights fitted inside it), wait
   until the worker has hot-reloaded it (its ``model reloaded: <name>@<version>`` log line;
   the lists published next carry that version in their ``model`` field) and only then
   release more events, so every later event is ranked by the new version.

Each round is recorded (`Round`): where in the scored part it ran, the version written,
the gate's decision, and what it cost (wall and CPU seconds, the wait for the reload).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streamrec.infra.gating import STALL_TIMEOUT_S
from streamrec.settings import Settings
from streamrec.streams.lists import ListBook
from streamrec.types import Event, Item

SUFFIX = "+retrain"
# A promoted version must be serving within this (poll every 5 s + load + catalog embedding).
RELOAD_TIMEOUT_S = 300.0
RELOAD_POLL_S = 0.2


def base_name(name: str) -> str:
    """The recommender a run serves: ``transformer+retrain`` -> ``transformer``.

    >>> base_name("transformer+retrain"), base_name("cooccurrence"), retrains("fusion+retrain")
    ('transformer', 'cooccurrence', True)
    """
    return name.removesuffix(SUFFIX)


def retrains(name: str) -> bool:
    return name.endswith(SUFFIX)


@dataclasses.dataclass(frozen=True)
class Round:
    """One round inside the replay, as report.json's ``retraining`` lists it."""

    recommender: str
    at_event: int  # scored events released before the round
    at_ts: float  # event time of the last of them (where the round sits on the timeline)
    kind: str
    version: str | None
    promoted: bool
    reason: str
    seconds: float  # wall time of the round (training, gate, save)
    cpu_s: float  # CPU time of the round (time.process_time)
    reload_s: float  # wait until the worker served the promoted version


class Retraining:
    """Rounds on the replayed events for one ``+retrain`` run (see module doc)."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        items: Sequence[Item],
        worker_log: Path,
        degrade_round: int = 0,
    ) -> None:
        from streamrec.infra.commands.trainer import trainer_config
        from streamrec.models.text_encoder import TextEncoder
        from streamrec.models.trainer import Trainer

        self.name, self.items, self.worker_log = name, list(items), worker_log
        self.degrade_round = degrade_round
        config = dataclasses.replace(trainer_config(settings), refit_fusion=base_name(name) == "fusion")
        encoder = TextEncoder(cache_dir=Path(settings.data_dir) / "text_cache")
        self.trainer = Trainer(settings.model_dir, encoder, config)
        self.rounds: list[Round] = []

    def observe(self, event: Event) -> None:
        self.trainer.observe([event])

    def pause(self, book: ListBook, released: Callable[[], tuple[dict[str, int], float]], at_event: int) -> None:
        """The pause after ``at_event`` scored events: settle, run a round, wait for its version."""
        expected, at_ts = released()
        book.wait_for(expected, STALL_TIMEOUT_S)
        trainer = self.trainer
        degrade = len(self.rounds) + 1 == self.degrade_round
        trainer.config = dataclasses.replace(trainer.config, degrade=degrade)
        started, cpu = time.monotonic(), time.process_time()
        decision = trainer.round(self.items)
        seconds, cpu_s = time.monotonic() - started, time.process_time() - cpu
        reload_s = self._wait_reload(decision.version) if decision.version else 0.0
        v = decision.verdict
        self.rounds.append(
            Round(
                self.name,
                at_event,
                at_ts,
                decision.kind,
                decision.version,
                v.promote,
                v.reason,
                round(seconds, 2),
                round(cpu_s, 2),
                round(reload_s, 2),
            )
        )

    def _wait_reload(self, version: str) -> float:
        """Block until the worker logged the reload of ``version``; returns the wait."""
        started = time.monotonic()
        needle = f"model reloaded: {base_name(self.name)}@{version}".encode()
        while needle not in self.worker_log.read_bytes():
            if time.monotonic() - started > RELOAD_TIMEOUT_S:
                raise TimeoutError(f"the worker never loaded {version} (see {self.worker_log})")
            time.sleep(RELOAD_POLL_S)
        return time.monotonic() - started

    def report(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.rounds]


def own_model_dir(model_dir: str, data_dir: str, name: str) -> str:
    """A copy of ``model_dir`` for the ``+retrain`` run ``name`` (the frozen runs keep the original)."""
    copy = Path(data_dir) / "backtest" / f"models-{name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model_dir, copy)
    return str(copy)
