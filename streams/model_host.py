"""The recommender a process serves with, kept current and swapped without stopping.

A `ModelHost` holds the current recommender, hands it the catalog updates and the
shared learning log as they arrive (`follow`), and, when a newer model artifact
appears, builds its replacement off the event loop and swaps it in between batches
(`reload_if_newer`): the feedback loop's last step. It knows nothing of Faust, so a
worker and an HTTP server can host a model the same way.

Memory stays bounded: what the recommender has learned is dropped from the learning
log at once. A reloaded model takes the item-side statistics over from the model it
replaces (`Recommender.carry_over`) instead of replaying the log, and a restart loads
them from a checkpoint (`streams.checkpoint`) and reads only the log's tail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter

from streamrec.models.base import Recommender
from streamrec.models.challenger import CHALLENGER, CHAMPION, Trial, challenger_path, read_trial
from streamrec.models.experiments import ArmedRecommender, parse_experiment
from streamrec.models.registry import RecommenderOptions, initial_recommender, make_recommender, uses_artifacts
from streamrec.models.versions import latest_version
from streamrec.settings import Settings
from streamrec.streams.catalog import Catalog
from streamrec.streams.learning import LearningLog, Position

log = logging.getLogger(__name__)


def build_recommender(settings: Settings, initial: bool = False, trial: Trial | None = None) -> Recommender:
    """The recommender ``settings`` ask for: ``settings.recommender``, or, with an
    ``experiment`` configured, its arms' (`models.experiments.ArmedRecommender`), or,
    during a champion/challenger ``trial`` (`models.challenger`), the recommender built
    from the live version and from the challenger's as two arms.
    ``initial``: what a worker starts with (`models.registry.initial_recommender`)."""
    options = RecommenderOptions.of(settings)
    make = initial_recommender if initial else make_recommender
    if settings.experiment:
        return ArmedRecommender.build(parse_experiment(settings.experiment), lambda spec: make(spec, options))
    if trial is not None:
        challenger = dataclasses.replace(options, model_dir=challenger_path(settings.model_dir, trial))
        arms = {CHAMPION: make(settings.recommender, options), CHALLENGER: make(settings.recommender, challenger)}
        return ArmedRecommender(trial.experiment(settings.recommender), arms)
    return make(settings.recommender, options)


def served(settings: Settings) -> str:
    """What ``settings`` serve, as a checkpoint names it: the experiment, else the recommender."""
    return settings.experiment or settings.recommender


def artifact_backed(settings: Settings) -> bool:
    """Whether a newer model artifact changes what ``settings`` serve (any arm reads artifacts)."""
    specs = [a.recommender for a in parse_experiment(settings.experiment).arms] if settings.experiment else []
    return any(uses_artifacts(spec) for spec in specs or [settings.recommender])


class ModelHost:
    """The current recommender, its artifact version, and its cursors into both logs."""

    def __init__(
        self,
        settings: Settings,
        recommender: Recommender,
        catalog: Catalog,
        learning: LearningLog,
        position: Position | None = None,
    ) -> None:
        """``position``: how far ``recommender`` has learned the log already (restored from
        a checkpoint, see `streams.checkpoint`); the ``learning`` log then resumes there."""
        self.settings = settings
        self.recommender = recommender
        self.catalog = catalog
        self.learning = learning
        self.position = position or Position()
        self.stats: Counter[str] = Counter()
        self._catalog_cursor = 0
        self._learning_cursor = 0
        # The artifact the current recommender was built from (None: none existed), and the
        # champion/challenger trial it serves (None: none; one already running is taken up
        # at the first `reload_if_newer`).
        self.version = latest_version(settings.model_dir)
        self.trial: Trial | None = None
        # The (version, trial) whose model could not be built: not tried again until either changes.
        self._unbuildable: tuple[str | None, Trial | None] | None = None

    def follow(self) -> None:
        """Hand the recommender the catalog updates and every worker's applied events that
        arrived since the last call; the log then forgets them."""
        items, catalog_at = self.catalog.updates_since(self._catalog_cursor)
        if items:
            self.recommender.update_items(items)
        learned, learning_at = self.learning.updates_since(self._learning_cursor)
        for update in learned:
            self.recommender.learn(update.user, update.interaction)
        self.position.took(learned)
        self.stats["items"] += catalog_at - self._catalog_cursor
        self.stats["learned"] += learning_at - self._learning_cursor
        self._catalog_cursor, self._learning_cursor = catalog_at, learning_at
        self.learning.forget_before(learning_at)

    async def reload_if_newer(self) -> bool:
        """Swap in a newer model artifact, or start or end a champion/challenger trial
        (`models.challenger`), if there is one; True if it did.

        Loading the artifact and embedding the catalog run in a thread, so the stream
        keeps flowing on the old model; at the swap, between batches, the new model takes
        over the old one's item-side statistics (learned up to the host's cursor, and the
        exposure of every list served until then), and the next `follow` hands it the
        catalog updates and events that arrived meanwhile. A trial's arms take them over
        from the single model; when the trial ends, the model takes them from the champion.
        """
        if not artifact_backed(self.settings):
            return False
        version = latest_version(self.settings.model_dir)
        trial = None if self.settings.experiment else read_trial(self.settings.model_dir)
        if (version, trial) in ((self.version, self.trial), self._unbuildable):
            return False
        try:
            new, catalog_at = await asyncio.get_running_loop().run_in_executor(None, self._fresh_model, trial)
        except FileNotFoundError as exc:  # a trial ended while its challenger was loading: next poll
            log.warning("model not reloaded: %s", exc)
            return False
        except Exception:  # a corrupt version or challenger folder: the current model serves on
            current = self.recommender.version
            log.warning("model %s (trial %s) cannot be built; still serving %s", version, trial, current, exc_info=True)
            self._unbuildable = (version, trial)
            return False
        previous = self.recommender
        if self.trial is not None and trial is None and isinstance(previous, ArmedRecommender):
            previous = previous.arms[CHAMPION]  # the trial ended: the champion's statistics
        new.carry_over(previous)
        self.recommender, self.version, self.trial = new, version, trial
        self._catalog_cursor = catalog_at
        log.info("model reloaded: %s", new.version)
        self.stats["model_reloads"] += 1
        return True

    def learning_lag(self) -> int:
        """Learning-log entries read but not yet handed to the current model."""
        return self.learning.behind(self._learning_cursor)

    def _fresh_model(self, trial: Trial | None = None) -> tuple[Recommender, int]:
        """A new recommender brought up to the whole catalog (off the loop)."""
        recommender = build_recommender(self.settings, trial=trial)
        items, catalog_at = self.catalog.updates_since(0)
        if items:
            recommender.update_items(items)
        return recommender, catalog_at
