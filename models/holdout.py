"""Hold-out splits of an event log, and the contexts a recommender is asked at them.

The one protocol of training, evaluation and fusion fitting (docs/peers.md): each
user's events in time order (`user_sequences`); the last ones are held out
(`leave_one_out`: the second-to-last validates, the last tests; ``held=1``: the last
validates), the rest is training, fed to streaming models in global time order
(`feed`); a held-out event is asked with the user's events before it as the window, all
of them excluded (`holdout_contexts`). No torch here: the fusion fits on these too.

>>> evs = [Event("u", i, "view", t) for t, i in enumerate("abcd")]
>>> train, valid, test = leave_one_out(user_sequences(evs))
>>> contexts, targets = holdout_contexts(train, valid, test)
>>> [e.item_id for e in contexts[0].window], sorted(contexts[0].exclude), targets
(['a', 'b', 'c'], ['a', 'b', 'c'], ['d'])
>>> [c.window[-1].item_id for c in validation_contexts(train, valid)[0]], validation_contexts(train, valid)[1]
(['b'], ['c'])
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, overload

from streamrec.models.base import Recommender
from streamrec.types import WINDOW, Event, Interaction, Item, UserContext

# Users per `recommend` call when asking held-out contexts: the worker's micro-batch size.
BATCH = 256
# Held-out events by user: one per user that has a target.
Targets = dict[str, Event]


def user_sequences(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Each user's events, oldest first (ties keep input order).

    >>> [e.item_id for e in user_sequences([Event("u", "a", "view", 2.0), Event("u", "b", "click", 1.0)])["u"]]
    ['b', 'a']
    """
    seqs: defaultdict[str, list[Event]] = defaultdict(list)
    for event in events:
        seqs[event.user_id].append(event)
    return {user: sorted(evs, key=lambda e: e.ts) for user, evs in seqs.items()}


@overload
def leave_one_out(seqs: Mapping[str, list[Event]], held: Literal[1]) -> tuple[dict[str, list[Event]], Targets]: ...
@overload
def leave_one_out(
    seqs: Mapping[str, list[Event]], held: Literal[2] = 2
) -> tuple[dict[str, list[Event]], Targets, Targets]: ...
def leave_one_out(
    seqs: Mapping[str, list[Event]], held: int = 2
) -> tuple[dict[str, list[Event]], *tuple[Targets, ...]]:
    """``(train, *targets)``: each user's last ``held`` events are targets, oldest first
    (``held=2``: valid, test), the rest is ``train``. Users with ``held`` events or fewer
    keep everything for training and have no target.

    >>> train, valid = leave_one_out({"u": [Event("u", "a", "view", 0), Event("u", "b", "view", 1)], "v": []}, 1)
    >>> [e.item_id for e in train["u"]], valid["u"].item_id, train["v"], "v" in valid
    (['a'], 'b', [], False)
    """
    train = {user: list(evs[:-held]) if len(evs) > held else list(evs) for user, evs in seqs.items()}
    targets = ({u: evs[len(evs) - held + n] for u, evs in seqs.items() if len(evs) > held} for n in range(held))
    return (train, *targets)


def interaction(event: Event) -> Interaction:
    return Interaction(event.item_id, event.event_type, event.ts)


def feed(
    model: Recommender, train_seqs: Mapping[str, list[Event]], items: Sequence[Item], window: int = WINDOW
) -> None:
    """Announce the catalog, then ``learn`` every training event in global time order."""
    model.update_items(items)
    windows: dict[str, deque[Interaction]] = {u: deque(maxlen=window) for u in train_seqs}
    for event in sorted((e for evs in train_seqs.values() for e in evs), key=lambda e: e.ts):
        recent = windows[event.user_id]
        model.learn(UserContext(event.user_id, tuple(recent)), interaction(event))
        recent.append(interaction(event))


def holdout_contexts(
    train_seqs: Mapping[str, list[Event]], valid: Mapping[str, Event], test: Mapping[str, Event], window: int = WINDOW
) -> tuple[list[UserContext], list[str]]:
    """Per test user: window = last training + validation events; exclude = all of them."""
    contexts, targets = [], []
    for user, target in test.items():
        history = [*train_seqs[user], valid[user]]
        contexts.append(
            UserContext(user, tuple(interaction(e) for e in history[-window:]), frozenset(e.item_id for e in history))
        )
        targets.append(target.item_id)
    return contexts, targets


def validation_contexts(
    train_seqs: Mapping[str, list[Event]], valid: Mapping[str, Event], window: int = WINDOW
) -> tuple[list[UserContext], list[str]]:
    """`holdout_contexts` one event earlier: the validation events as targets (fitting a
    ranker on them keeps the test events unseen); users with no training event skipped."""
    users = [u for u in valid if train_seqs[u]]
    earlier = {u: train_seqs[u][:-1] for u in users}
    return holdout_contexts(earlier, {u: train_seqs[u][-1] for u in users}, {u: valid[u] for u in users}, window)
