"""Recommenders by name, as the worker, the evaluation and the backtest select them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamrec.settings import Settings
from streamrec.types import parse_event_weights
from streamrec.models.base import Recommender
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.popularity import Popularity
from streamrec.models.rerank import TAIL, TailRerank, is_knob
from streamrec.models.trending import Trending

if TYPE_CHECKING:
    from streamrec.models.transformer import TransformerRecommender

log = logging.getLogger(__name__)

TRANSFORMER = "transformer"


def _transformer(settings: Settings) -> TransformerRecommender:
    # Imported lazily: torch and the text encoder cost seconds that the simple models skip.
    from streamrec.models.transformer import TransformerRecommender

    return TransformerRecommender.from_dir(settings.model_dir, new_item_boost=settings.new_item_boost)


def _content(settings: Settings) -> Recommender:
    # Text vectors from the artifact when there is one (no re-encoding), else the encoder.
    from streamrec.models.artifact import load_latest
    from streamrec.models.content import Content

    artifact = load_latest(settings.model_dir)
    vectors = (artifact.item_ids, artifact.item_text[1:]) if artifact is not None else None
    return Content(_weights(settings), vectors)


def _fusion(settings: Settings) -> Recommender:
    from streamrec.models.fusion import Fusion

    return Fusion.from_dir(settings.model_dir, _weights(settings), _transformer(settings))


def _tail(base: str) -> Callable[[Settings], Recommender]:
    """``<base>+tail``: ``base`` re-ranked with the knob ``settings.tail_knob``."""
    return lambda settings: TailRerank(make_recommender(base, settings), settings.tail_knob)


def _weights(settings: Settings) -> dict[str, float]:
    return parse_event_weights(settings.event_weights)


FACTORIES: dict[str, Callable[[Settings], Recommender]] = {
    "popularity": lambda settings: Popularity(_weights(settings)),
    "cooccurrence": lambda settings: CoOccurrence(_weights(settings)),
    TRANSFORMER: _transformer,
    "trending": lambda settings: Trending(_weights(settings)),
    "content": _content,
    "fusion": _fusion,
    "fusion" + TAIL: _tail("fusion"),
}


def known(name: str) -> bool:
    """A name `make_recommender` accepts: a factory, or ``<factory>@<knob>`` for ``+tail`` ones."""
    base, at, knob = name.partition("@")
    return base in FACTORIES and (not at or (base.endswith(TAIL) and is_knob(knob)))


def make_recommender(name: str, settings: Settings) -> Recommender:
    """``fusion+tail@0.3`` = ``fusion+tail`` with ``tail_knob = 0.3``."""
    if not known(name):
        raise ValueError(f"unknown recommender {name!r}; choose from {', '.join(FACTORIES)} (+tail@<knob>)")
    base, at, knob = name.partition("@")
    return FACTORIES[base](settings.with_(tail_knob=float(knob)) if at else settings)


def initial_recommender(settings: Settings) -> Recommender:
    """What a worker starts with: the configured model, or, when the transformer has no
    artifact yet, co-occurrence until one is trained (the worker hot-reloads it)."""
    try:
        return make_recommender(settings.recommender, settings)
    except FileNotFoundError as exc:
        if settings.recommender != TRANSFORMER:
            raise
        log.warning("%s; serving cooccurrence until an artifact appears", exc)
        return CoOccurrence()


# Recommenders that learn everything from the stream; every other one reads model artifacts.
STREAMING_ONLY = frozenset({"popularity", "cooccurrence", "trending"})


def uses_artifacts(name: str) -> bool:
    """Whether ``name`` must be rebuilt when a newer artifact appears (hot reload)."""
    return name not in STREAMING_ONLY


def needs_training(name: str) -> bool:
    """Whether ``name`` needs `streamrec train` output (content can encode texts itself)."""
    return name.partition("@")[0] in {TRANSFORMER, "fusion", "fusion" + TAIL}
