"""A seeded synthetic stream whose users drift: the test bed of the continual trainer.

What it models, and what a recommender must do to keep up:

- **topics in text only**: every item belongs to one of `TOPICS`; item ids are opaque
  (``d<n>``) and the topic shows only in the words of its title and category, so a model
  can tell two items are alike from their text, never from their id;
- **drift at known moments**: each user has a dominant topic, picked for a share
  `DOMINANT` of their events; at every time in ``drifts`` every user switches to another
  topic (chosen at random), so what held before a drift misleads after it;
- **new items over time**: a part of the catalog is released at known times after the
  start, described only by its text; fresh items are favoured (popularity decays with
  age), so a model frozen before their release misses most of what users then pick;
- **series**: items come in series of `SERIES_LENGTH` parts; a user who took part ``n``
  takes part ``n + 1`` next with probability `FOLLOW_SERIES` (a sequence signal).

Event ``n`` happens at ``t0 + n * STEP_S`` (log time); ``released[i]`` is when item ``i``
appears in the catalog; no event names an item before its release.

>>> stream = drift_stream(n_events=2000, n_users=40, n_items=120, seed=1)
>>> len(stream.events), stream.drifts == sorted(stream.drifts), stream.items[0].item_id
(2000, True, 'd0')
>>> all(stream.released[e.item_id] <= e.ts for e in stream.events)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.types import EVENT_TYPES, Event, Item

# Topic -> words its titles draw from; the first word is the category's word too.
TOPICS: dict[str, tuple[str, ...]] = {
    "space": ("space", "galaxy", "starship", "orbit", "nebula", "astronaut"),
    "cooking": ("cooking", "kitchen", "recipe", "baking", "spices", "chef"),
    "jazz": ("jazz", "saxophone", "swing", "trumpet", "bebop", "blues"),
    "running": ("running", "marathon", "trail", "sprint", "stamina", "sneakers"),
    "chess": ("chess", "gambit", "checkmate", "opening", "endgame", "grandmaster"),
    "gardening": ("gardening", "roses", "compost", "seedlings", "orchard", "greenhouse"),
    "finance": ("finance", "stocks", "budget", "investing", "dividends", "savings"),
    "history": ("history", "empire", "medieval", "dynasty", "revolution", "archive"),
}
# Share of a user's events in their dominant topic; the rest are spread over all topics.
DOMINANT = 0.8
# Parts per series, and the chance a user continues the series they are in.
SERIES_LENGTH = 4
FOLLOW_SERIES = 0.5
# Share of the catalog present at the start; the rest is released evenly afterwards.
INITIAL_SHARE = 0.6
# An item's appeal halves every this many events after its release (fresh items win).
FRESHNESS_HALF_LIFE = 5000
# Log time between consecutive events.
STEP_S = 60.0
# Drifts at these shares of the log (after the usual 50% warm-up cut, and once more later).
DRIFT_AT = (0.55, 0.8)
# Event types, as in real logs: mostly views.
TYPE_SHARES = (0.7, 0.25, 0.05)


@dataclass(frozen=True)
class DriftStream:
    """The catalog (in release order), when each item appears, the events and the drift times."""

    items: list[Item]
    released: dict[str, float]
    events: list[Event]
    drifts: list[float]
    # Each item's topic and each user's dominant topic per era (era k = before drift k).
    topic_of: dict[str, str]
    dominant: dict[str, list[str]]


def drift_stream(
    n_events: int = 40_000, n_users: int = 500, n_items: int = 1000, seed: int = 7, t0: float = 1.7e9
) -> DriftStream:
    """The stream described in the module docstring; the same seed gives the same stream."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    items, topic_of, release_step = _catalog(n_items, n_events, rng)
    released = {item.item_id: t0 + step * STEP_S for item, step in zip(items, release_step, strict=True)}
    drift_steps = [int(share * n_events) for share in DRIFT_AT]
    dominant = {f"du{u}": _eras(rng, names, len(drift_steps)) for u in range(n_users)}
    by_topic = {name: [n for n, item in enumerate(items) if topic_of[item.item_id] == name] for name in names}
    activity = 1.0 / np.arange(1, n_users + 1) ** 0.5  # some users far more active than others
    users = rng.choice(n_users, size=n_events, p=activity / activity.sum())
    last_item: dict[int, int] = {}
    events = []
    for step in range(n_events):
        user = int(users[step])
        era = int(np.searchsorted(drift_steps, step, side="right"))
        previous = last_item.get(user)
        if (
            previous is not None
            and (previous + 1) % SERIES_LENGTH
            and release_step[previous + 1] <= step
            and rng.random() < FOLLOW_SERIES
        ):
            chosen = previous + 1
        else:
            topic = dominant[f"du{user}"][era] if rng.random() < DOMINANT else names[rng.integers(len(names))]
            chosen = _fresh_pick(by_topic[topic], release_step, step, rng)
        last_item[user] = chosen
        kind = EVENT_TYPES[rng.choice(len(EVENT_TYPES), p=TYPE_SHARES)]
        events.append(Event(f"du{user}", items[chosen].item_id, kind, t0 + step * STEP_S, f"de{seed}-{step}"))
    drifts = [t0 + step * STEP_S for step in drift_steps]
    return DriftStream(items, released, events, drifts, topic_of, dominant)


def _catalog(n_items: int, n_events: int, rng: np.random.Generator) -> tuple[list[Item], dict[str, str], np.ndarray]:
    """Items in series (consecutive ids), each series in one topic, and each item's release step.

    Series are released whole; the first `INITIAL_SHARE` of them at step 0, the rest spread
    evenly over the log, so the catalog list is in release order.
    """
    names = list(TOPICS)
    n_series = max(1, n_items // SERIES_LENGTH)
    initial = int(INITIAL_SHARE * n_series)
    items: list[Item] = []
    topic_of: dict[str, str] = {}
    steps: list[int] = []
    for s in range(n_series):
        # The first series cover every topic once, so each topic has items from the start.
        topic = names[s] if s < len(names) else names[int(rng.integers(len(names)))]
        words = TOPICS[topic]
        name = " ".join(words[int(w)] for w in rng.choice(len(words), size=2, replace=False)).title()
        step = 0 if s < initial else int((s - initial + 1) / (n_series - initial + 1) * n_events)
        for part in range(1, SERIES_LENGTH + 1):
            item_id = f"d{len(items)}"
            items.append(Item(item_id, f"{name}, part {part}", category=topic.title()))
            topic_of[item_id] = topic
            steps.append(step)
    return items, topic_of, np.asarray(steps)


def _eras(rng: np.random.Generator, names: list[str], n_drifts: int) -> list[str]:
    """A user's dominant topic before the first drift and after each one (always a change)."""
    eras = [names[int(rng.integers(len(names)))]]
    for _ in range(n_drifts):
        others = [n for n in names if n != eras[-1]]
        eras.append(others[int(rng.integers(len(others)))])
    return eras


def _fresh_pick(candidates: list[int], release_step: np.ndarray, step: int, rng: np.random.Generator) -> int:
    """A released item of ``candidates``, first parts of series favoured, fresher ones more likely."""
    released = [c for c in candidates if release_step[c] <= step]
    ages = step - release_step[released]
    appeal = 0.5 ** (ages / FRESHNESS_HALF_LIFE) * np.where(np.asarray(released) % SERIES_LENGTH == 0, 3.0, 1.0)
    return int(released[rng.choice(len(released), p=appeal / appeal.sum())])
