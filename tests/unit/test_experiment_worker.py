"""The processor with an experiment: arms' models, arm fields and outcomes on every list (no Faust)."""

from __future__ import annotations

from pathlib import Path

import orjson

from streamrec.models.experiments import Tally, arm_of, parse_experiment
from streamrec.streams.contracts import parse_recommendation
from streamrec.streams.model_host import build_recommender
from tests.unit.test_processor import Fixture

EXPERIMENT = "t=pop:popularity,co:cooccurrence"
USERS = 30


def _armed(tmp_path: Path) -> Fixture:
    f = Fixture(tmp_path, experiment=EXPERIMENT)
    f.processor.host.recommender = build_recommender(f.settings)
    return f


def test_every_list_carries_its_arm_and_the_outcome_of_the_events_since_the_last_one(tmp_path: Path) -> None:
    f = _armed(tmp_path)
    experiment = parse_experiment(EXPERIMENT)
    users = [f"u{n}" for n in range(USERS)]
    f.run(*(f.record(u, "i0") for u in users))
    first = {m["user_id"]: m for m in f.port.of("recommendations")}
    f.run(*(r for u in users for r in (f.record(u, "i1"), f.record(u, "i2"))))
    second = f.port.of("recommendations")[USERS:]
    assert len(second) == USERS
    for message in second:
        user, arm = message["user_id"], arm_of(experiment, message["user_id"])
        assert (message["experiment"], message["arm"]) == ("t", arm)
        assert message["model"] == experiment.arm(arm).recommender  # the arm's model, not the experiment's
        assert message["outcome"] == {"seen": [i["item_id"] for i in first[user]["items"]], "items": ["i1", "i2"]}
        assert parse_recommendation(orjson.dumps(message)).arm == arm
    assert all(m["outcome"] == {"seen": [], "items": ["i0"]} for m in first.values())
    assert {m["arm"] for m in second} == {"pop", "co"}


def test_outcomes_from_lists_accumulate_per_arm_and_per_user(tmp_path: Path) -> None:
    f = _armed(tmp_path)
    for item in ("i0", "i1", "i2"):
        f.run(*(f.record(f"u{n}", item) for n in range(USERS)))
    tally = Tally()
    for m in map(orjson.dumps, f.port.of("recommendations")):
        message = parse_recommendation(m)
        assert message.outcome is not None and message.arm is not None
        tally.add(message.arm, message.user_id, message.outcome.seen, message.outcome.items)
    summary = tally.summary(parse_experiment(EXPERIMENT), catalog_size=3, resamples=100)
    assert summary["arms"]["pop"]["users"] + summary["arms"]["co"]["users"] == USERS
    assert summary["arms"]["pop"]["events"] + summary["arms"]["co"]["events"] == 3 * USERS
    assert summary["arms"]["co"]["lists"] == 2 * summary["arms"]["co"]["users"]  # the first event saw no list
    prometheus = f.processor.metrics.value("streamrec_experiment_scored_events_total", experiment="t", arm="co")
    assert prometheus == summary["arms"]["co"]["events"]


def test_without_an_experiment_lists_and_state_stay_as_they_were(tmp_path: Path) -> None:
    f = Fixture(tmp_path)
    f.run(f.record("u1", "i0"), f.record("u1", "i1"))
    [message] = f.port.of("recommendations")
    assert not {"experiment", "arm", "outcome"} & message.keys()
    assert "s" not in dict.get(f.users, (next(iter(f.users))[0], "u1"))
