"""The leave-one-out protocol and its metrics on a hand-made log with known answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from streamrec.models.base import Recommender
from streamrec.models.evaluation import evaluate, score
from streamrec.models.holdout import holdout_contexts, leave_one_out, user_sequences
from streamrec.models.metrics import masked_ranks
from streamrec.types import Event, Item, Ranked, UserContext

ITEMS = [Item(i, f"title {i}") for i in "abcde"]
# (user, item, ts); users' rows are deliberately out of time order.
LOG = [
    ("u1", "b", 2), ("u1", "a", 1), ("u1", "c", 3), ("u1", "d", 4),
    ("u2", "a", 1), ("u2", "c", 2), ("u2", "b", 3), ("u2", "e", 5),
    ("u3", "b", 1), ("u3", "a", 2), ("u3", "d", 3), ("u3", "c", 6),
]  # fmt: skip
EVENTS = [Event(u, i, "view", float(t)) for u, i, t in LOG]


def test_split_is_by_time_last_is_test_second_to_last_is_validation() -> None:
    train, valid, test = leave_one_out(user_sequences(EVENTS))
    assert [e.item_id for e in train["u1"]] == ["a", "b"]
    assert (valid["u1"].item_id, test["u1"].item_id) == ("c", "d")
    contexts, targets = holdout_contexts(train, valid, test)
    assert targets == ["d", "e", "c"]
    assert [e.item_id for e in contexts[1].window] == ["a", "c", "b"]
    assert contexts[2].exclude == {"b", "a", "d"}


def test_popularity_through_the_harness_masks_seen_items() -> None:
    # Training popularity: a=3, b=2, c=1, d=e=0. Masked lists: u1 [d, e], u2 [d, e], u3 [c, e]
    # -> ranks 1, 2, 1 (unmasked, u1's d would be 4th and u3's c 3rd).
    metrics = evaluate(EVENTS, ITEMS, encoder=None, methods=("popularity",))["popularity"]
    assert metrics["hr@10"] == 1.0
    assert metrics["ndcg@10"] == pytest.approx((2 + 1 / math.log2(3)) / 3)
    assert metrics["mrr@10"] == pytest.approx(2.5 / 3)
    assert metrics["coverage@10"] == pytest.approx(3 / 5)  # c, d, e shown


class Fixed(Recommender):
    """Serves a fixed list per user."""

    name = "fixed"

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.lists = lists

    def recommend(self, users: Sequence[UserContext], k: int) -> list[Ranked]:
        return [[(i, 1.0) for i in self.lists[u.user_id][:k]] for u in users]


def test_score_turns_lists_into_known_metrics() -> None:
    filler = [f"x{n}" for n in range(30)]
    lists = {"u1": ["t1", *filler], "u2": [*filler[:2], "t2", *filler[2:]], "u3": [*filler[:14], "t3"]}
    users = [UserContext(u) for u in lists]
    catalog = ["t1", "t2", "t3", *filler]
    metrics = score(Fixed(lists), users, ["t1", "t2", "t3"], catalog, head={"t1"})
    assert metrics["hr@10"] == pytest.approx(2 / 3)  # ranks 1, 3, 15
    assert metrics["ndcg@10"] == pytest.approx((1 + 0.5) / 3)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert metrics["hr@20"] == 1.0
    assert metrics["ndcg@20"] == pytest.approx((1 + 0.5 + 0.25) / 3)
    # Top-10s: u1 t1+x0..x8, u2 x0,x1,t2,x2..x8, u3 x0..x9 -> 12 of 33 items, t1 once in 30.
    assert metrics["coverage@10"] == pytest.approx(12 / 33)
    assert metrics["tail_share@10"] == pytest.approx(29 / 30)


def test_masked_ranks_ignore_banned_items_but_never_the_target() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0], [5.0, 4.0, 3.0, 2.0]])
    ranks = masked_ranks(scores, [3, 0], [[0, 1, 3], [0, 2]])
    assert ranks.tolist() == [2.0, 1.0]
