"""``GET /v1/experiments`` and ``streamrec experiments`` from lists carrying outcomes (no broker)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from streamrec.infra.commands.experiments import experiments_table
from streamrec.models.experiments import MAX_ARMS, Tally, arm_of, parse_experiment
from streamrec.serving.experiments import MAX_EXPERIMENTS, Board
from streamrec.settings import Settings
from streamrec.streams.contracts import parse_recommendation
from tests.unit.test_http_api import Server, serve

SPEC = "ab=control:popularity,treat:cooccurrence"
EXPERIMENT = parse_experiment(SPEC)


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve(Settings(experiment=SPEC))


def _list(user: str, seen: list[str], acted: list[str]) -> dict:
    arm = arm_of(EXPERIMENT, user)
    return {
        "user_id": user,
        "items": [{"item_id": "i9", "score": 1.0}],
        "generated_at": 1.0,
        "source_event_ts": 1.0,
        "source_event_id": None,
        "model": EXPERIMENT.arm(arm).recommender,
        "user_events": 1,
        "experiment": "ab",
        "arm": arm,
        "outcome": {"seen": seen, "items": acted},
    }


def test_a_configured_experiment_is_listed_before_any_outcome(server: Server) -> None:
    arms = server.client.get("/v1/experiments").json()["experiments"]["ab"]["arms"]
    assert (arms["control"]["users"], arms["treat"]["users"]) == (0, 0)
    assert arms["treat"]["difference"]["ndcg@10"]["estimate"] is None


def test_arms_fill_in_from_the_outcomes_on_the_lists(server: Server) -> None:
    users = [f"u{n}" for n in range(40)]
    # control users act on what they were shown, treatment users never do
    server.publish_lists(
        *(_list(u, ["i1", "i2"], ["i1" if arm_of(EXPERIMENT, u) == "control" else "i7"]) for u in users)
    )
    body = server.client.get("/v1/experiments").json()
    arms = body["experiments"]["ab"]["arms"]
    assert arms["control"]["hr@10"]["estimate"] == 1.0 and arms["treat"]["hr@10"]["estimate"] == 0.0
    assert arms["treat"]["difference"]["hr@10"] == {"estimate": -1.0, "low": -1.0, "high": -1.0}
    assert arms["control"]["users"] + arms["treat"]["users"] == len(users)
    assert body["history"][-1]["experiments"]["ab"]["control"]["hr@10"]["estimate"] == 1.0


def test_the_cli_table_shows_arms_and_the_difference() -> None:
    tally = Tally()
    for n in range(10):
        tally.add(arm_of(EXPERIMENT, f"u{n}"), f"u{n}", ["a"], ["a"])
    table = experiments_table("ab", tally.summary(EXPERIMENT, catalog_size=5, resamples=50))
    assert [c.header for c in table.columns][:2] == ["arm", "recommender"]
    assert table.row_count == 3  # two arms and one difference


def test_lists_of_ever_new_experiments_and_arms_keep_the_board_bounded() -> None:
    """Each trial is a new experiment, and any producer of lists can name more: the board
    keeps the configured one and the most recently listed, each with the arms it can have."""
    board = Board(Settings(experiment=SPEC))
    board.on_message(parse_recommendation(orjson.dumps(_list("u0", ["i1"], ["i1"]))))
    for n in range(3 * MAX_EXPERIMENTS):
        for arm in range(MAX_ARMS + 5):
            message = _list(f"u{arm}", ["i1"], ["i1"]) | {"experiment": f"trial-{n}", "arm": f"arm-{arm}"}
            board.on_message(parse_recommendation(orjson.dumps(message)))
    board.on_message(parse_recommendation(orjson.dumps(_list("u1", ["i1"], ["i1"]) | {"arm": "forged"})))
    names = list(board.summary(catalog_size=10, now=0.0)["experiments"])
    assert len(names) == MAX_EXPERIMENTS and "ab" in names and f"trial-{3 * MAX_EXPERIMENTS - 1}" in names
    assert all(len(arms) <= MAX_ARMS for arms in board.models.values())
    assert set(board.tallies["ab"].arms) <= {"control", "treat"}
    assert board.ignored == 3 * MAX_EXPERIMENTS * 5 + 1
