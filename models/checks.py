"""A conformance check any `Recommender` should pass (river's ``check_estimator`` in spirit).

`check_recommender` feeds fresh instances of a recommender a small stream and checks
the contract of `models.base` and what the worker relies on:

- at most ``k`` items per list, no item twice, scores non-increasing;
- never an item of ``user.exclude``, never an unavailable item (``Item(available=False)``);
- deterministic: two fresh instances fed the same stream give the same lists;
- ``recommend_arrays`` is ``recommend`` as arrays: one fresh instance's `TopK` holds
  exactly the other's lists (items, order, scores);
- hot reload: a fresh instance fed the same stream that `carry_over`\\ s from a serving one
  serves what that one would serve next (it keeps the carried memory, e.g. exposure).

Run it on your own recommender with a factory (the default stream needs no training):

>>> from streamrec.models.popularity import Popularity
>>> check_recommender(Popularity)
>>> class AlwaysTheSame(Popularity):
...     name = "always-the-same"
...     def recommend(self, users, k):
...         return [[("i0", 1.0)] for _ in users]
>>> check_recommender(AlwaysTheSame)
Traceback (most recent call last):
...
AssertionError: always-the-same recommends 'i0' to u0, who excludes it
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import replace

from streamrec.models.base import Recommender
from streamrec.types import EVENT_TYPES, WINDOW, Event, Interaction, Item, Ranked, UserContext

# List length asked for: more than a user of the default stream has seen, fewer than its catalog.
K = 5
# Lists served before a new instance takes over, so that served-list memory has built up.
ROUNDS = 3
CATEGORIES = ("Jazz", "Rock", "Pop")


def default_stream(n_items: int = 12, n_users: int = 8, per_user: int = 6) -> tuple[list[Item], list[Event]]:
    """A small deterministic catalog (titles, categories, descriptions) and event log.

    >>> items, events = default_stream()
    >>> len(items), len(events), items[1].category, events[1]
    (12, 48, 'Rock', Event(user_id='u1', item_id='i3', event_type='click', ts=1.0, event_id=None))
    """
    items = [
        Item(f"i{n}", f"Item {n}", f"a {CATEGORIES[n % 3].lower()} record, number {n}", CATEGORIES[n % 3])
        for n in range(n_items)
    ]
    events = [
        Event(f"u{u}", f"i{(3 * u + 5 * t) % n_items}", EVENT_TYPES[(u + t) % len(EVENT_TYPES)], 60.0 * t + u)
        for t in range(per_user)
        for u in range(n_users)
    ]
    return items, events


def check_recommender(
    make: Callable[[], Recommender],
    items: Sequence[Item] | None = None,
    events: Sequence[Event] | None = None,
    k: int = K,
) -> None:
    """Raise AssertionError, saying what broke, unless fresh instances of ``make()`` fed
    ``items`` and ``events`` (default: `default_stream`) keep the contract (module doc)."""
    if items is None or events is None:
        items, events = default_stream()
    unavailable = Counter(e.item_id for e in events).most_common(1)[0][0]  # the item most lists would want
    users = contexts(events, unavailable)
    serving, twin = fed(make(), items, events, unavailable), fed(make(), items, events, unavailable)
    for _ in range(ROUNDS):
        lists = serving.recommend(users, k)
        check_lists(serving, users, lists, k, unavailable)
        again = twin.recommend(users, k)
        _require(
            again == lists, f"{serving.version} is not deterministic: two fresh instances fed the same stream differ"
        )
    carried = fed(make(), items, events, unavailable)
    carried.carry_over(serving)
    lists = carried.recommend(users, k)
    check_lists(carried, users, lists, k, unavailable)
    _require(lists == twin.recommend(users, k), f"{carried.version} loses what carry_over hands it: lists differ")
    # Fresh instances: serving a list may change a model (a re-ranker's exposure memory).
    lists = fed(make(), items, events, unavailable).recommend(users, k)
    arrays = fed(make(), items, events, unavailable).recommend_arrays(users, k)
    _require(arrays.lists() == lists, f"{serving.version}: recommend_arrays and recommend give different lists")


def fed(model: Recommender, items: Sequence[Item], events: Sequence[Event], unavailable: str) -> Recommender:
    """``model`` after the catalog, every event in time order (with the user's window), and
    ``unavailable`` withdrawn: what a worker's catch-up does."""
    model.update_items(items)
    windows: dict[str, deque[Interaction]] = {}
    for event in sorted(events, key=lambda e: e.ts):
        window = windows.setdefault(event.user_id, deque(maxlen=WINDOW))
        interaction = Interaction(event.item_id, event.event_type, event.ts)
        model.learn(UserContext(event.user_id, tuple(window)), interaction)
        window.append(interaction)
    withdrawn = [replace(item, available=False) for item in items if item.item_id == unavailable]
    model.update_items(withdrawn or [Item(unavailable, unavailable, available=False)])
    return model


def contexts(events: Sequence[Event], unavailable: str) -> list[UserContext]:
    """Who is asked: every user of ``events`` with their window (every other one excluding
    all of it, the rest only its oldest item), a new user, and one who saw only the
    unavailable item and an item nobody announced."""
    windows: dict[str, list[Interaction]] = {}
    for event in sorted(events, key=lambda e: e.ts):
        windows.setdefault(event.user_id, []).append(Interaction(event.item_id, event.event_type, event.ts))
    users = []
    for n, (user, window) in enumerate(windows.items()):
        recent = tuple(window[-WINDOW:])
        excluded = recent if n % 2 == 0 else recent[:1]
        users.append(UserContext(user, recent, frozenset(e.item_id for e in excluded)))
    last = max(e.ts for e in events)
    odd = (Interaction(unavailable, "view", last), Interaction("never-announced", "click", last))
    return [*users, UserContext("new-user"), UserContext("odd-user", odd)]


def check_lists(
    model: Recommender, users: Sequence[UserContext], lists: Sequence[Ranked], k: int, unavailable: str
) -> None:
    """The per-list part of `check_recommender`."""
    name = model.version
    _require(len(lists) == len(users), f"{name} returns {len(lists)} lists for {len(users)} users")
    for user, ranked in zip(users, lists, strict=True):
        ids = [item for item, _ in ranked]
        scores = [score for _, score in ranked]
        _require(len(ranked) <= k, f"{name} returns {len(ranked)} items to {user.user_id} for k={k}")
        _require(len(set(ids)) == len(ids), f"{name} repeats an item in the list of {user.user_id}: {ids}")
        _require(
            all(a >= b for a, b in itertools.pairwise(scores)), f"{name}: scores increase for {user.user_id}: {ranked}"
        )
        for item in ids:
            _require(item not in user.exclude, f"{name} recommends {item!r} to {user.user_id}, who excludes it")
            _require(item != unavailable, f"{name} recommends the unavailable item {item!r} to {user.user_id}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
