from streamrec.streams.state import UserState
from streamrec.types import Event


def test_redelivered_offsets_and_duplicate_ids_apply_once() -> None:
    state = UserState(window_size=3)
    assert state.apply(Event("u", "a", "view", 1.0, "e1"), offset=10)
    assert not state.apply(Event("u", "a", "view", 1.0, "e1"), offset=10)  # redelivery
    assert not state.apply(Event("u", "b", "view", 2.0, "e0"), offset=9)  # older offset
    assert not state.apply(Event("u", "a", "view", 1.0, "e1"), offset=11)  # producer retry
    assert state.apply(Event("u", "b", "click", 2.0), offset=12)  # no id: offset decides
    assert state.events == 2 and state.counts == [1, 1, 0]


def test_window_keeps_the_newest_events_and_purchases_are_excluded() -> None:
    state = UserState(window_size=3)
    for offset, item in enumerate("abcd"):
        state.apply(Event("u", item, "purchase" if item == "a" else "view", float(offset)), offset)
    assert [i.item_id for i in state.window] == ["b", "c", "d"]
    assert state.context("u").exclude == {"a"}
    assert state.context("u", exclude_recent=2).exclude == {"a", "c", "d"}


def test_state_round_trips_through_the_table_form() -> None:
    state = UserState(window_size=5)
    state.apply(Event("u", "a", "click", 3.5, "x"), 0)
    state.vector = [0.25, -1.0]
    again = UserState.from_dict(state.to_dict(), window_size=5)
    assert again == state
    assert UserState.from_dict(None, 5) == UserState(5)
