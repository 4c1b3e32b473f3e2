"""Recommenders by name, as the worker, the evaluation and the backtest select them.

Factories take explicit `RecommenderOptions` (the caller builds them from its settings,
e.g. `RecommenderOptions.of`), never the whole configuration.

>>> make_recommender("trending", RecommenderOptions("/nowhere", {"view": 1.0, "click": 1.0, "purchase": 1.0})).weights
{'view': 1.0, 'click': 1.0, 'purchase': 1.0}
>>> make_recommender("fusion+tail@0.3", RecommenderOptions("/nowhere"))
Traceback (most recent call last):
...
FileNotFoundError: no model artifact under /nowhere: run `streamrec train` first
>>> initial_recommender("transformer", RecommenderOptions("/nowhere")).name  # until one is trained
'cooccurrence'

A name may pin a model version: ``<name>#<version>`` is built from that version folder
instead of the newest (an experiment's arm comparing two versions of one model):

>>> known("fusion+tail@0.5#20261202T155149554439Z-00"), known("cooccurrence#20261202T155149554439Z-00")
(True, False)
>>> make_recommender("transformer#20261202T155149554439Z-00", RecommenderOptions("/nowhere"))
Traceback (most recent call last):
...
FileNotFoundError: no model artifact under /nowhere/20261202T155149554439Z-00: run `streamrec train` first
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from streamrec.models.base import Recommender
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.popularity import Popularity
from streamrec.models.rerank import TAIL, TAIL_KNOB, TailRerank, is_knob
from streamrec.models.trending import Trending
from streamrec.models.versions import is_version
from streamrec.types import EVENT_WEIGHTS, parse_event_weights

if TYPE_CHECKING:
    from streamrec.models.transformer import TransformerRecommender

log = logging.getLogger(__name__)

TRANSFORMER = "transformer"
# ``<name>#<version>``: ``name`` built from that model version rather than the newest.
PIN = "#"


class RecommenderSettings(Protocol):
    """What `RecommenderOptions.of` reads (``streamrec.settings.Settings`` has it)."""

    @property
    def model_dir(self) -> str: ...
    @property
    def event_weights(self) -> str: ...
    @property
    def tail_knob(self) -> float: ...
    @property
    def new_item_boost(self) -> float: ...


@dataclasses.dataclass(frozen=True)
class RecommenderOptions:
    """Everything a factory may use: where the model versions are, how much each event
    type weighs, the long-tail knob and the transformer's new-item boost (None: its
    default, `models.transformer.NEW_ITEM_BOOST`, not imported here: torch)."""

    model_dir: str | Path
    event_weights: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(EVENT_WEIGHTS))
    tail_knob: float = TAIL_KNOB
    new_item_boost: float | None = None

    @classmethod
    def of(cls, settings: RecommenderSettings) -> RecommenderOptions:
        """From a settings object (``event_weights`` as ``"view=1,click=2,..."``)."""
        weights = parse_event_weights(settings.event_weights)
        return cls(settings.model_dir, weights, settings.tail_knob, settings.new_item_boost)


def transformer(options: RecommenderOptions) -> TransformerRecommender:
    """The newest transformer artifact under ``options.model_dir``."""
    # Imported lazily: torch and the text encoder cost seconds that the simple models skip.
    from streamrec.models.transformer import NEW_ITEM_BOOST, TransformerRecommender

    boost = NEW_ITEM_BOOST if options.new_item_boost is None else options.new_item_boost
    return TransformerRecommender.from_dir(options.model_dir, new_item_boost=boost)


def _content(options: RecommenderOptions) -> Recommender:
    # Text vectors from the artifact when there is one (no re-encoding), else the encoder.
    from streamrec.models.artifact import load_latest
    from streamrec.models.content import Content

    artifact = load_latest(options.model_dir)
    vectors = (artifact.item_ids, artifact.item_text[1:]) if artifact is not None else None
    return Content(dict(options.event_weights), vectors)


def _fusion(options: RecommenderOptions) -> Recommender:
    from streamrec.models.fusion import Fusion

    return Fusion.around(transformer(options), dict(options.event_weights))


def _tail(base: str) -> Callable[[RecommenderOptions], Recommender]:
    """``<base>+tail``: ``base`` re-ranked with the knob ``options.tail_knob``."""
    return lambda options: TailRerank(make_recommender(base, options), options.tail_knob)


FACTORIES: dict[str, Callable[[RecommenderOptions], Recommender]] = {
    "popularity": lambda options: Popularity(dict(options.event_weights)),
    "cooccurrence": lambda options: CoOccurrence(dict(options.event_weights)),
    TRANSFORMER: transformer,
    "trending": lambda options: Trending(dict(options.event_weights)),
    "content": _content,
    "fusion": _fusion,
    "fusion" + TAIL: _tail("fusion"),
}


def known(name: str) -> bool:
    """A name `make_recommender` accepts: a factory, ``<factory>@<knob>`` for ``+tail``
    ones, either pinned to a model version (``#<version>``) if it reads artifacts."""
    name, pin, version = name.partition(PIN)
    if pin and not (uses_artifacts(name) and is_version(version)):
        return False
    base, at, knob = name.partition("@")
    return base in FACTORIES and (not at or (base.endswith(TAIL) and is_knob(knob)))


def pinned_version(name: str) -> str | None:
    """The model version ``name`` is pinned to (``<name>#<version>``), if any.

    >>> pinned_version("fusion+tail@0.5#20261202T155149554439Z-00"), pinned_version("fusion")
    ('20261202T155149554439Z-00', None)
    """
    return name.partition(PIN)[2] or None


def make_recommender(name: str, options: RecommenderOptions) -> Recommender:
    """``fusion+tail@0.3`` = ``fusion+tail`` with ``tail_knob = 0.3``; ``...#<version>``
    reads that version folder of ``options.model_dir``."""
    if not known(name):
        raise ValueError(
            f"unknown recommender {name!r}; choose from {', '.join(FACTORIES)} (+tail@<knob>, #<model version>)"
        )
    name, pin, version = name.partition(PIN)
    if pin:
        options = dataclasses.replace(options, model_dir=Path(options.model_dir) / version)
    base, at, knob = name.partition("@")
    return FACTORIES[base](dataclasses.replace(options, tail_knob=float(knob)) if at else options)


def initial_recommender(name: str, options: RecommenderOptions) -> Recommender:
    """What a worker starts with: ``name``, or, when the transformer has no artifact yet,
    co-occurrence (with the configured event weights) until one is trained (the worker
    hot-reloads it)."""
    try:
        return make_recommender(name, options)
    except FileNotFoundError as exc:
        if name != TRANSFORMER:
            raise
        log.warning("%s; serving cooccurrence until an artifact appears", exc)
        return FACTORIES["cooccurrence"](options)


# Recommenders that learn everything from the stream; every other one reads model artifacts.
STREAMING_ONLY = frozenset({"popularity", "cooccurrence", "trending"})


def uses_artifacts(name: str) -> bool:
    """Whether ``name`` must be rebuilt when a newer artifact appears (hot reload)."""
    return name.partition(PIN)[0] not in STREAMING_ONLY


def needs_training(name: str) -> bool:
    """Whether ``name`` needs `streamrec train` output (content can encode texts itself)."""
    return name.partition(PIN)[0].partition("@")[0] in {TRANSFORMER, "fusion", "fusion" + TAIL}
