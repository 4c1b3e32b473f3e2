"""The ground layer: types and constants every layer shares, with no dependency at all.

Everything else in streamrec imports from here; this module imports nothing of
streamrec and nothing outside the standard library (``import streamrec.types`` is
instant). The wire codec of these types is `streamrec.streams.contracts`.

>>> event = Event("u1", "i9", "click", 5.0)
>>> EVENT_WEIGHTS[event.event_type], Item("i9", "Heat (1995)", category="Action, Crime").categories
(2.0, ('Action', 'Crime'))
>>> UserContext("u1", (Interaction("i9", "click", 5.0),)).window[-1].item_id
'i9'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# The kinds of event producers emit, in the order counters store them.
EVENT_TYPES = ("view", "click", "purchase")
EVENT_TYPE_INDEX = {name: i for i, name in enumerate(EVENT_TYPES)}
# How much one event says about interest, by type (view < click < purchase).
EVENT_WEIGHTS: Mapping[str, float] = {"view": 1.0, "click": 2.0, "purchase": 4.0}
# Length of a user's recent-event window, the sequence the models read (a setting overrides it).
WINDOW = 50
# Longest identifier (user, item, experiment, arm) a message may carry (`streams.contracts`).
MAX_ID_CHARS = 256

# A ranked list: (item_id, score) pairs, best first.
Ranked = list[tuple[str, float]]
# One explanation per recommended item: {"reason": human text, "source": which model}.
Explanation = dict[str, str]


@dataclass(frozen=True, slots=True)
class Event:
    """One user action, as validated from the ``events`` topic."""

    user_id: str
    item_id: str
    event_type: str
    ts: float
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog entry, as announced on the ``items`` topic."""

    item_id: str
    title: str
    description: str = ""
    category: str = ""
    available: bool = True

    @property
    def text(self) -> str:
        """What a text encoder reads: title, category and description."""
        return ". ".join(part for part in (self.title, self.category, self.description) if part)

    @property
    def categories(self) -> tuple[str, ...]:
        """The comma-separated categories, trimmed, in order (``"Action, Drama"`` -> both)."""
        return tuple(dict.fromkeys(c.strip() for c in self.category.split(",") if c.strip()))


@dataclass(frozen=True, slots=True)
class Interaction:
    """One entry of a user's recent-event window."""

    item_id: str
    event_type: str
    ts: float


@dataclass(frozen=True, slots=True)
class UserContext:
    """What a recommender may know of a user: the window (oldest first) and exclusions."""

    user_id: str
    window: Sequence[Interaction] = ()
    exclude: frozenset[str] = field(default_factory=frozenset)
    # Latest user vector kept in state, if the model produced one earlier.
    vector: np.ndarray | None = None

    def with_vector(self, vector: np.ndarray) -> UserContext:
        return UserContext(self.user_id, self.window, self.exclude, vector)


def parse_event_weights(spec: str) -> dict[str, float]:
    """``"view=1,click=2,purchase=4"`` -> weights; types left out keep `EVENT_WEIGHTS`.

    >>> parse_event_weights("click=3, purchase=9")
    {'view': 1.0, 'click': 3.0, 'purchase': 9.0}
    """
    weights = dict(EVENT_WEIGHTS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in EVENT_WEIGHTS:
            raise ValueError(f"event weight {part!r}: expected <{'|'.join(EVENT_WEIGHTS)}>=<number>")
        weights[name] = float(value)
        if weights[name] < 0:
            raise ValueError(f"event weight {part!r} must not be negative")
    return weights
