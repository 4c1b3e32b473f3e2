"""A live A/B experiment through the real broker, worker and server: arms on lists, outcomes per arm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from streamrec.infra.broker import free_port
from streamrec.infra.cli import main
from streamrec.infra.stack import Stack
from streamrec.models.experiments import arm_of, parse_experiment
from streamrec.settings import Settings
from streamrec.streams.replay import produce_items
from streamrec.types import Item
from tests.conftest import wait_for
from tests.integration.observe import Lists

pytestmark = pytest.mark.integration

SPEC = "live=pop:popularity,co:cooccurrence"
EXPERIMENT = parse_experiment(SPEC)
ITEMS = [Item(f"m{i}", f"Movie {i}") for i in range(30)]
USERS = [f"ab-{n}" for n in range(24)]
ROUNDS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data: Path = tmp_path_factory.mktemp("experiment")
    settings = Settings.load(env={}, overrides={"data_dir": str(data), "http_port": free_port(), "experiment": SPEC})
    with Stack(settings, serve=True) as running:
        produce_items(ITEMS, running.settings)
        yield running


def test_lists_carry_arms_and_outcomes_accumulate_per_arm(stack: Stack) -> None:
    lists = Lists(stack.settings, "ab-lists")
    http = httpx.Client(base_url=stack.http_url, timeout=10)
    try:
        for n in range(ROUNDS):  # each round waits for every list, so the next event is scored against it
            for u, user in enumerate(USERS):
                item = ITEMS[(u + n) % len(ITEMS)].item_id
                event = {"user_id": user, "item_id": item, "event_type": "view", "event_id": f"{user}-{n}"}
                assert http.post("/v1/events", json=event).status_code == 202
            assert wait_for(lambda n=n: lists.reached(dict.fromkeys(USERS, n + 1)), 90), lists.short(
                dict.fromkeys(USERS, n + 1)
            )
        for user in USERS:
            latest = lists.latest[user]
            assert (latest["experiment"], latest["arm"]) == ("live", arm_of(EXPERIMENT, user))
            assert latest["model"] == EXPERIMENT.arm(latest["arm"]).recommender
            assert len(latest["outcome"]["items"]) == 1 and latest["outcome"]["seen"]

        def summarised() -> dict:
            return http.get("/v1/experiments").json()["experiments"]["live"]["arms"]

        assert wait_for(lambda: sum(a["events"] for a in summarised().values()) == ROUNDS * len(USERS), 60)
        arms = summarised()
        assert {arm: row["users"] for arm, row in arms.items()} == {
            arm.name: sum(arm_of(EXPERIMENT, u) == arm.name for u in USERS) for arm in EXPERIMENT.arms
        }
        assert sum(a["lists"] for a in arms.values()) == (ROUNDS - 1) * len(USERS)  # the first events saw no list
        assert set(arms["co"]["difference"]["ndcg@10"]) == {"estimate", "low", "high"}
        printed = CliRunner().invoke(main, ["experiments", "--url", stack.http_url])
        assert printed.exit_code == 0 and "co − pop" in printed.output and "co: wait" in printed.output
    finally:
        lists.stop()
        http.close()
