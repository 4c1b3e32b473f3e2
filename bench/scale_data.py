"""Synthetic data for bench/bench_scale.py: a catalog with varied text, and its text vectors.

Titles, categories and descriptions are drawn from small word lists with a seed, so 100k
items get distinct texts (the scale bench embeds them with the model's text encoder).

>>> [item.text for item in text_catalog(2)] == [item.text for item in text_catalog(2)]
True
>>> len({item.title for item in text_catalog(1000)})
1000
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import Progress

from streamrec.types import Item

ADJECTIVES = [
    "silent",
    "quick",
    "golden",
    "broken",
    "hidden",
    "wild",
    "lost",
    "bright",
    "dark",
    "frozen",
    "electric",
    "gentle",
    "crimson",
    "ancient",
    "modern",
    "lonely",
    "hungry",
    "secret",
    "distant",
    "burning",
    "quiet",
    "restless",
    "velvet",
    "iron",
    "paper",
    "glass",
    "stormy",
    "sunny",
]
NOUNS = [
    "river",
    "garden",
    "engine",
    "mirror",
    "kingdom",
    "harbor",
    "island",
    "forest",
    "machine",
    "letter",
    "shadow",
    "city",
    "mountain",
    "voyage",
    "bridge",
    "orchard",
    "lantern",
    "circuit",
    "desert",
    "signal",
    "tower",
    "market",
    "planet",
    "violin",
    "recipe",
    "compass",
]
GENRES = [
    "Drama",
    "Comedy",
    "Thriller",
    "Sci-Fi",
    "Romance",
    "Documentary",
    "Animation",
    "Horror",
    "Mystery",
    "Adventure",
    "Fantasy",
    "Cooking",
    "Travel",
    "Jazz",
    "Rock",
    "Classical",
    "Fitness",
    "Gardening",
    "History",
    "Science",
]
DESCRIPTION_WORDS = 4
# Texts embedded per call: the encoder's cache file is rewritten after each, so an
# interrupted run keeps what it did.
ENCODE_CHUNK = 5000


def text_catalog(n_items: int, seed: int = 0) -> list[Item]:
    """Items ``t0..t{n-1}``: "<adjective> <noun> <number>", one or two genres, a few words."""
    rng = np.random.default_rng(seed)
    words = ADJECTIVES + NOUNS
    items = []
    for i in range(n_items):
        adjective, noun = ADJECTIVES[rng.integers(len(ADJECTIVES))], NOUNS[rng.integers(len(NOUNS))]
        genres = ", ".join(sorted({GENRES[g] for g in rng.integers(len(GENRES), size=rng.integers(1, 3))}))
        description = " ".join(words[w] for w in rng.integers(len(words), size=DESCRIPTION_WORDS))
        items.append(Item(f"t{i}", f"{adjective.title()} {noun.title()} {i}", description, genres))
    return items


def encode_catalog(items: Sequence[Item], cache_dir: Path) -> np.ndarray:
    """Text vectors of ``items`` (cached in ``cache_dir``: a second run is a file read)."""
    from streamrec.models.text_encoder import TextEncoder

    encoder = TextEncoder(cache_dir=cache_dir)
    with Progress(transient=True) as progress:
        task = progress.add_task("embedding item texts", total=len(items))
        parts = []
        for start in range(0, len(items), ENCODE_CHUNK):
            parts.append(encoder.encode_items(items[start : start + ENCODE_CHUNK]))
            progress.advance(task, len(parts[-1]))
    return np.concatenate(parts)
