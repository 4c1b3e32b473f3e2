"""Checkpoints of item-side statistics: restored + the log's tail equals the whole log."""

from __future__ import annotations

import pickle

import pytest

from streamrec.models.base import Recommender
from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.fusion import Fusion
from streamrec.models.popularity import Popularity
from streamrec.models.registry import RecommenderOptions, make_recommender
from streamrec.models.rerank import TailRerank
from streamrec.models.trending import Trending
from streamrec.settings import Settings
from streamrec.streams import checkpoint
from streamrec.streams.broadcast import Record
from streamrec.streams.catalog import Catalog
from streamrec.streams.contracts import encode_item
from streamrec.streams.learning import Learned, LearningLog, encode_batch
from streamrec.streams.model_host import ModelHost
from streamrec.streams.sources import synthetic_catalog, synthetic_events
from streamrec.types import Interaction, UserContext

ITEMS, USERS, EVENTS, BATCH = 80, 30, 2400, 40


def fusion_tail() -> TailRerank:
    sources = {"cooccurrence": CoOccurrence(half_life_s=3600.0), "trending": Trending(half_life_s=600.0)}
    return TailRerank(Fusion(sources), knob=0.5)


MODELS = {
    "popularity": Popularity,
    "cooccurrence": lambda: CoOccurrence(half_life_s=3600.0),
    "trending": Trending,
    "fusion+tail": fusion_tail,
}


def learning_records() -> tuple[list[Record], list[UserContext]]:
    """The synthetic stream as ``events.learning`` records (one per `BATCH` events, and one
    redelivered record), and every user's context at its end."""
    windows: dict[str, list[Interaction]] = {}
    entries = []
    for offset, event in enumerate(synthetic_events(EVENTS, USERS, ITEMS, seed=5)):
        window = windows.setdefault(event.user_id, [])
        interaction = Interaction(event.item_id, event.event_type, event.ts)
        entries.append((offset, interaction, list(window)))
        window.append(interaction)
    batches = [encode_batch(0, entries[start : start + BATCH]) for start in range(0, len(entries), BATCH)]
    batches.insert(len(batches) // 3, batches[len(batches) // 4])  # a redelivery: learned once only
    records = [Record(b"0", value, 0, 0, n) for n, value in enumerate(batches)]
    users = [UserContext(u, tuple(w[-50:]), frozenset(i.item_id for i in w[-5:])) for u, w in sorted(windows.items())]
    return records, [*users, UserContext("new")]


def host_for(tmp_path, model: Recommender, log: LearningLog, position=None) -> ModelHost:
    settings = Settings.load(env={}, overrides={"data_dir": str(tmp_path), "recommender": "cooccurrence"})
    catalog = Catalog()
    catalog.on_records([Record(None, encode_item(item), 0, 0, n) for n, item in enumerate(synthetic_catalog(ITEMS))])
    return ModelHost(settings, model, catalog, log, position)


def leaves(state: object, path: str = "") -> dict[str, bytes]:
    """Every leaf of a state (through dicts and objects' attributes), pickled: equal
    states have equal leaves, whichever objects they share."""
    if isinstance(state, dict) and all(isinstance(k, str) for k in state):
        return {p: b for key, value in state.items() for p, b in leaves(value, f"{path}.{key}").items()}
    if hasattr(state, "__dict__"):
        return leaves(vars(state), path)
    return {path: pickle.dumps(state)}


def served(model: Recommender, users: list[UserContext]) -> list:
    """Lists (twice: the second sees the first's exposure) and their explanations."""
    lists = model.recommend(users, 10) + model.recommend(users, 10)
    return [*lists, *(model.explain(u, r) for u, r in zip(users + users, lists, strict=True))]


@pytest.mark.parametrize("name", MODELS)
def test_restored_from_a_checkpoint_plus_the_tail_equals_the_whole_log(tmp_path, name: str) -> None:
    records, users = learning_records()
    cut = len(records) // 2

    whole = host_for(tmp_path, MODELS[name](), LearningLog())
    for n in range(0, len(records), 7):  # handed over in uneven pieces
        whole.learning.on_records(records[n : n + 7])
        whole.follow()
        if n < cut:  # lists served until the checkpoint (exposure served after it is lost on restart)
            whole.recommender.recommend(users[:3], 10)
        if n <= cut < n + 7:
            checkpoint.save(tmp_path, name, whole.recommender, whole.position)

    restarted = MODELS[name]()
    position = checkpoint.load(tmp_path, name, restarted)
    assert position is not None and 0 < position.record < len(records) - 1
    host = host_for(tmp_path, restarted, LearningLog(resume=position), position)
    host.learning.on_records(records)  # a restart reads the topic: what the checkpoint holds is skipped
    host.follow()
    assert host.stats["learned"] < EVENTS  # only the tail
    assert leaves(restarted.item_state()) == leaves(whole.recommender.item_state())
    assert served(restarted, users) == served(whole.recommender, users)


def test_a_checkpoint_for_another_recommender_is_ignored(tmp_path) -> None:
    model = Popularity()
    model.learn(UserContext("u"), Interaction("a", "view", 0.0))
    checkpoint.save(tmp_path, "popularity", model, host_for(tmp_path, model, LearningLog()).position)
    assert checkpoint.load(tmp_path, "trending", Popularity()) is None
    assert checkpoint.load(tmp_path, "popularity", Trending()) is None
    (tmp_path / checkpoint.FILE).write_bytes(b"not a pickle")
    assert checkpoint.load(tmp_path, "popularity", Popularity()) is None


def test_a_hot_reload_takes_the_statistics_over_instead_of_replaying_the_log(tmp_path) -> None:
    records, users = learning_records()
    options = RecommenderOptions.of(Settings.load(env={}, overrides={"data_dir": str(tmp_path)}))
    old = make_recommender("cooccurrence", options)
    host = host_for(tmp_path, old, LearningLog())
    host.learning.on_records(records)
    host.follow()
    new = make_recommender("cooccurrence", options)
    new.carry_over(old)
    assert new.recommend(users, 10) == old.recommend(users, 10)
    assert host.learning_lag() == 0 and host.learning.updates_since(host._learning_cursor) == ([], EVENTS)
    with pytest.raises(ValueError, match="forgotten"):  # nothing kept to replay
        host.learning.updates_since(0)


def _checkpoint_bytes(state: object = None, position: object = None, kind: str = "popularity:Popularity") -> bytes:
    good = checkpoint.dumps("popularity", Popularity(), host_for("/nowhere", Popularity(), LearningLog()).position)
    data = pickle.loads(good)
    data.update(kind=kind)
    if state is not None:
        data.update(state=state)
    if position is not None:
        data.update(position=position)
    return pickle.dumps(data)


BAD_CHECKPOINTS = {
    "empty": lambda: b"",
    "truncated": lambda: _checkpoint_bytes()[:-7],
    "a list": lambda: pickle.dumps([1, 2]),
    "statistics missing": lambda: _checkpoint_bytes(state={}),
    "statistics of another type": lambda: _checkpoint_bytes(state={"items": "garbage"}),
    "position a dict": lambda: _checkpoint_bytes(position={"record": 3}),
    "position negative": lambda: _checkpoint_bytes(position=checkpoint.Position(record=-1)),
}


@pytest.mark.parametrize("content", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_a_damaged_or_hand_made_checkpoint_is_ignored_and_the_model_stays_fresh(
    tmp_path, content, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / checkpoint.FILE).write_bytes(content())
    model = Popularity()
    assert checkpoint.load(tmp_path, "popularity", model) is None
    assert "not used" in caplog.text
    assert leaves(model.item_state()) == leaves(Popularity().item_state())
    model.learn(UserContext("u"), Interaction("a", "view", 0.0))  # and it still learns and serves
    assert model.recommend([UserContext("v")], 1) == [[("a", 1.0)]]


def test_a_log_shorter_than_the_checkpoint_says_is_learned_not_skipped(tmp_path, caplog) -> None:
    """The topic was recreated: its records sit before the checkpoint's, and skipping up to it
    would drop them all; the learned source offsets still drop what was learned before."""
    position = checkpoint.Position()
    position.took([Learned(UserContext(""), Interaction("a", "view", 0.0), 0, offset, 39) for offset in range(5)])
    log = LearningLog(resume=position)
    entries = [(offset, Interaction("b", "view", 1.0), []) for offset in range(10)]
    log.on_records([Record(b"0", encode_batch(0, entries), 0, 0, 3)])
    learned, _ = log.updates_since(0)
    assert [u.offset for u in learned] == [5, 6, 7, 8, 9] and log.redelivered == 5
    assert "before the checkpoint's 39" in caplog.text
