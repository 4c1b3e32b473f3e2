"""Recommenders by name, as the worker, the evaluation and the backtest select them."""

from __future__ import annotations

from collections.abc import Callable

from infra.config import Settings
from models.base import Recommender
from models.cooccurrence import CoOccurrence
from models.popularity import Popularity


def _transformer(settings: Settings) -> Recommender:
    # Imported lazily: torch and the text encoder cost seconds that the simple models skip.
    from models.transformer import TransformerRecommender

    return TransformerRecommender.from_model_dir(settings.model_dir)


FACTORIES: dict[str, Callable[[Settings], Recommender]] = {
    "popularity": lambda settings: Popularity(),
    "cooccurrence": lambda settings: CoOccurrence(),
    "transformer": _transformer,
}


def make_recommender(name: str, settings: Settings) -> Recommender:
    try:
        factory = FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown recommender {name!r}; choose from {', '.join(FACTORIES)}") from None
    return factory(settings)
