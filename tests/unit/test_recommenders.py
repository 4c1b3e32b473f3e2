from streamrec.models.cooccurrence import CoOccurrence
from streamrec.models.popularity import Popularity
from streamrec.types import Interaction, Item, UserContext


def feed(model, sequences: dict[str, list[str]]) -> None:
    for user, items in sequences.items():
        window: list[Interaction] = []
        for item in items:
            interaction = Interaction(item, "click", 0.0)
            model.learn(UserContext(user, tuple(window)), interaction)
            window.append(interaction)


def test_popularity_weights_event_types_and_skips_unavailable() -> None:
    model = Popularity()
    model.learn(UserContext("u"), Interaction("a", "purchase", 0.0))
    for _ in range(3):
        model.learn(UserContext("u"), Interaction("b", "view", 0.0))
    model.learn(UserContext("u"), Interaction("c", "click", 0.0))
    assert [i for i, _ in model.recommend([UserContext("v")], 3)[0]] == ["a", "b", "c"]
    model.update_items([Item("a", "A", available=False)])
    assert [i for i, _ in model.recommend([UserContext("v")], 3)[0]] == ["b", "c"]


def test_cooccurrence_recommends_what_follows_the_recent_items() -> None:
    model = CoOccurrence()
    feed(model, {"u1": ["x", "y"], "u2": ["x", "y"], "u3": ["p", "q"], "u4": ["q", "p"], "u5": ["p", "q"]})
    after_x = model.recommend([UserContext("new", (Interaction("x", "view", 0.0),), frozenset({"x"}))], 2)[0]
    assert after_x[0][0] == "y"
    # No history: popularity decides (p and q are the most frequent), excluded items never appear.
    cold = model.recommend([UserContext("cold", exclude=frozenset({"q"}))], 10)[0]
    assert cold[0][0] == "p" and "q" not in {i for i, _ in cold}


def test_popularity_learns_items_never_announced_beyond_initial_capacity() -> None:
    model = Popularity()
    for n in range(200):  # more unannounced items than the score vector starts with
        model.learn(UserContext("u"), Interaction(f"i{n}", "view", 0.0))
    model.learn(UserContext("u"), Interaction("i150", "purchase", 0.0))
    assert model.recommend([UserContext("v")], 1)[0] == [("i150", 5.0)]
