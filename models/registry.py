"""Recommenders by name, as the worker, the evaluation and the backtest select them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from infra.config import Settings
from models.base import Recommender
from models.cooccurrence import CoOccurrence
from models.popularity import Popularity


log = logging.getLogger(__name__)

TRANSFORMER = "transformer"


def _transformer(settings: Settings) -> Recommender:
    # Imported lazily: torch and the text encoder cost seconds that the simple models skip.
    from models.transformer import TransformerRecommender

    return TransformerRecommender.from_dir(settings.model_dir)


FACTORIES: dict[str, Callable[[Settings], Recommender]] = {
    "popularity": lambda settings: Popularity(),
    "cooccurrence": lambda settings: CoOccurrence(),
    TRANSFORMER: _transformer,
}


def make_recommender(name: str, settings: Settings) -> Recommender:
    try:
        factory = FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown recommender {name!r}; choose from {', '.join(FACTORIES)}") from None
    return factory(settings)


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
