"""A small synthetic log through the real embedded broker and worker.

In lockstep (one event in flight) the worker's popularity lists can be predicted
exactly offline, so the test checks that the backtest scored each event against the
list its user really saw: the one computed right after their previous event.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from streamrec.infra import backtest
from streamrec.infra.cli import main
from streamrec.models import metrics
from streamrec.models.popularity import Popularity
from streamrec.models.prequential import Context, summarize
from streamrec.settings import Settings
from streamrec.streams.sources import write_jsonl
from streamrec.streams.state import UserState
from streamrec.types import Event, Interaction, Item, UserContext

pytestmark = pytest.mark.integration

N_ITEMS, N_EVENTS, TRAIN_UNTIL = 15, 90, 1045.0
ITEMS = [Item(f"i{n}", f"Item {n}", category="A" if n % 3 else "B") for n in range(N_ITEMS)]


def synthetic_log(seed: int = 7) -> list[Event]:
    """Six users, skewed items, some purchases; user "late" appears only after TRAIN_UNTIL."""
    rng = random.Random(seed)
    events = []
    for n in range(N_EVENTS):
        ts = 1000.0 + n
        user = "late" if ts >= TRAIN_UNTIL and n % 7 == 0 else f"u{rng.randrange(5)}"
        item = f"i{min(int(rng.expovariate(0.3)), N_ITEMS - 1)}"
        events.append(Event(user, item, rng.choice(("view", "view", "click", "purchase")), ts))
    return events


def expected_lists(log: list[Event], settings: Settings) -> dict[int, tuple[str, ...]]:
    """Log index -> the popularity list published right after that event (lockstep),
    with the worker's own user state deciding exclusions."""
    model, states, out = Popularity(), dict[str, UserState](), {}
    model.update_items(ITEMS)
    for n, event in enumerate(log):
        model.learn(UserContext(event.user_id), Interaction(event.item_id, event.event_type, event.ts))
        state = states.setdefault(event.user_id, UserState(settings.window))
        state.apply(event, offset=n)
        user = state.context(event.user_id, settings.exclude_recent)
        out[n] = tuple(item for item, _ in model.recommend([user], backtest.LIST_LENGTH)[0])
    return out


@pytest.fixture(scope="module")
def lockstep_run(tmp_path_factory: pytest.TempPathFactory) -> backtest.Run:
    settings = Settings.load(env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("state"))})
    config = backtest.BacktestConfig(("popularity",), TRAIN_UNTIL, in_flight=1, source="synthetic")
    run, _ = backtest.run_one("popularity", settings, synthetic_log, ITEMS, config)
    return run


def test_each_event_is_scored_against_the_list_after_the_users_previous_event(lockstep_run: backtest.Run) -> None:
    log = synthetic_log()
    scored = [e for e in log if e.ts >= TRAIN_UNTIL]
    assert [o.event.item_id for o in lockstep_run.outcomes] == [e.item_id for e in scored]
    previous: dict[str, int] = {}
    expected = expected_lists(log, Settings())
    checked = 0
    for n, event in enumerate(log):
        if event.ts >= TRAIN_UNTIL:
            outcome = lockstep_run.outcomes[n - (len(log) - len(scored))]
            assert outcome.seen_events == (outcome.event.ordinal - 1 if outcome.event.ordinal > 1 else -1)
            if event.user_id in previous:
                # Lockstep gates the warm-up too: every list is known exactly.
                assert outcome.seen == expected[previous[event.user_id]]
                assert outcome.rank == metrics.hit_rank(expected[previous[event.user_id]], event.item_id)
                checked += 1
        previous[event.user_id] = n
    assert checked == len(scored) - 1  # all but the new user's first event


def test_users_without_a_list_are_misses(lockstep_run: backtest.Run) -> None:
    late = [o for o in lockstep_run.outcomes if o.event.user_id == "late"]
    assert late[0].seen is None and late[0].rank == metrics.MISS
    assert all(o.seen is not None for o in late[1:])
    assert sum(o.seen is None for o in lockstep_run.outcomes) == 1


def test_every_event_is_included_in_a_later_list(lockstep_run: backtest.Run) -> None:
    assert all(o.latency_s is not None and o.latency_s > 0 for o in lockstep_run.outcomes)
    assert lockstep_run.reorder["reorder_max_events"] == 0


def test_cli_writes_reports_with_the_same_accuracy(lockstep_run: backtest.Run, tmp_path: Path) -> None:
    events, items = tmp_path / "events.csv", tmp_path / "items.jsonl"
    events.write_text(
        "user_id,item_id,event_type,ts\n"
        + "".join(f"{e.user_id},{e.item_id},{e.event_type},{e.ts}\n" for e in synthetic_log())
    )
    write_jsonl(items, ITEMS)
    args = [
        "backtest",
        "--events",
        str(events),
        "--items",
        str(items),
        "--train-until",
        str(TRAIN_UNTIL),
        "--recommenders",
        "popularity",
        "--in-flight",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(main, args, env={"STREAMREC_DATA_DIR": str(tmp_path / "state")}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    row = orjson.loads((tmp_path / "out" / "report.json").read_bytes())["recommenders"]["popularity"]
    train = Counter(e.item_id for e in synthetic_log() if e.ts < TRAIN_UNTIL)
    first = summarize(lockstep_run.outcomes, Context([i.item_id for i in ITEMS], train))
    for key in ("hr@10", "ndcg@10", "mrr@20", "coverage@10", "gini@10", "no_list", "events"):
        assert row[key] == pytest.approx(first[key]), key
    assert "<svg" in (tmp_path / "out" / "report.html").read_text()
