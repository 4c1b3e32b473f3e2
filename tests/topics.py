"""A tiny catalog in four distinct text topics, users who each stay within one topic, and
a briefly trained transformer over them: small enough for tests, real enough that text
similarity and sequence behaviour show (the real MiniLM encoder embeds the items)."""

from __future__ import annotations

import random

from streamrec.models.text_encoder import TextEncoder
from streamrec.models.training import TrainConfig, TrainResult, train
from streamrec.types import Event, Item

TOPICS = {
    "space": ("Star voyage", "Science fiction, Space", "astronauts travel between planets and distant galaxies"),
    "food": ("Kitchen secrets", "Cooking, Food", "chefs bake bread and cook pasta from family recipes"),
    "sport": ("Match day", "Sports, Football", "a football team fights for the league championship"),
    "jazz": ("Jazz nights", "Music, Jazz", "musicians play saxophone and piano in a smoky club"),
}
PER_TOPIC, USERS, EVENTS_PER_USER = 8, 64, 8
# Seconds between a user's events in the log: serve windows with the same spacing.
GAP_S = 60.0
NEW = Item("new-space", "Galaxy explorers", "a crew of astronauts explores a far galaxy", "Science fiction, Space")


def catalog() -> list[Item]:
    return [
        Item(f"{topic}-{k}", f"{title} {k}", f"{text}, part {k}", category)
        for topic, (title, category, text) in TOPICS.items()
        for k in range(PER_TOPIC)
    ]


def log(rng: random.Random) -> dict[str, list[Event]]:
    seqs = {}
    for u in range(USERS):
        topic = list(TOPICS)[u % len(TOPICS)]
        picks = rng.sample(range(PER_TOPIC), EVENTS_PER_USER)
        seqs[f"u{u}"] = [Event(f"u{u}", f"{topic}-{k}", "view", GAP_S * t) for t, k in enumerate(picks)]
    return seqs


def train_topic_model(encoder: TextEncoder) -> TrainResult:
    """A transformer trained for a few seconds on `log`; each user's last event validates."""
    items = catalog()
    seqs = log(random.Random(7))
    return train(
        {u: evs[:-1] for u, evs in seqs.items()},
        {u: evs[-1] for u, evs in seqs.items()},
        items,
        encoder.encode_items(items),
        {"window": 10, "id_dropout": 0.5, "dropout": 0.1},
        TrainConfig(epochs=15, patience=15, lr=3e-3, batch_size=16),
    )
