"""Fusion ranking cost per user on this machine, 1 thread: what a worker pays per list.

    python bench/bench_fusion.py [--items 1682] [--users 943] [--events 100000] [--lists FILE]

A synthetic ml-100k-sized stream (`streams.sources.synthetic_events`) is fed to a fusion
of the four default sources; the transformer is an untrained artifact with random text
vectors (same shapes as a trained one, so the same cost; no training needed). Users
have the worker's window (50 events, those items excluded) and, as in the worker, the
user vector `embed` made for them. Times, in ms per user, at batch sizes 1 and 256:
`embed` (the transformer's forward pass, which the worker runs before ranking), each
source's own top-100 lists, ``recommend`` (sources + features + ranking) and
``recommend`` + ``explain`` (what the worker does per list after `embed`).

``--lists FILE`` writes every user's top-10 and explanations as JSON, to check that two
implementations rank identically (run each on a checkout, then compare the files).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click
import faiss
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from streamrec.models import artifact
from streamrec.models.fusion import Fusion, default_sources
from streamrec.models.holdout import feed, interaction, user_sequences
from streamrec.models.sequence import SequenceConfig, SequenceEncoder
from streamrec.streams.sources import synthetic_catalog, synthetic_events
from streamrec.types import WINDOW, Item, UserContext

BATCHES = (1, 256)
K = 10
TEXT_DIM = 384  # MiniLM's width: content search and explanations cost what they do in production
# Each figure is the best of `ROUNDS` rounds of at least `ROUND_SECONDS` (after one
# warm-up call): the best round is the one least disturbed by other load on the machine.
ROUNDS, ROUND_SECONDS = 5, 0.5


def _timed(fn: Callable[[], object], users: int) -> float:
    """Milliseconds per user of ``fn`` (which ranks ``users`` users), best round."""
    fn()
    best = float("inf")
    for _ in range(ROUNDS):
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < ROUND_SECONDS:
            fn()
            calls += 1
        best = min(best, (time.perf_counter() - started) / (calls * users))
    return 1e3 * best


def save_untrained(model_dir: Path, items: Sequence[Item]) -> None:
    """An untrained transformer artifact for ``items``, with random unit text vectors:
    a trained one's shapes, so a trained one's cost."""
    rng = np.random.default_rng(0)
    text = rng.standard_normal((len(items) + 1, TEXT_DIM)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    text[0] = 0.0  # row 0 is padding
    torch.manual_seed(0)  # the same untrained weights every run: lists comparable across checkouts
    net = SequenceEncoder(SequenceConfig(n_items=len(items), text_dim=TEXT_DIM, window=WINDOW)).eval()
    artifact.save(model_dir, net, [item.item_id for item in items], text, "synthetic")


def build(model_dir: Path, n_items: int, n_users: int, n_events: int) -> tuple[Fusion, list[UserContext]]:
    """A fusion on an untrained artifact, fed the synthetic stream; one context per user."""
    items = synthetic_catalog(n_items)
    save_untrained(model_dir, items)
    model = Fusion(default_sources(model_dir))
    seqs = user_sequences(synthetic_events(n_events, n_users, n_items))
    feed(model, seqs, items, WINDOW)
    contexts = []
    for user, events in sorted(seqs.items()):
        window = tuple(interaction(e) for e in events[-WINDOW:])
        contexts.append(UserContext(user, window, frozenset(e.item_id for e in window)))
    return model, [c.with_vector(v) for c, v in zip(contexts, model.embed(contexts), strict=True)]


def measure(model: Fusion, contexts: Sequence[UserContext]) -> dict[str, dict[int, float]]:
    """ms/user by step and batch size."""

    def served(chunk: Sequence[UserContext]) -> None:
        for user, ranked in zip(chunk, model.recommend(chunk, K), strict=True):
            model.explain(user, ranked)

    steps: dict[str, Callable[[Sequence[UserContext]], object]] = {"embed (before ranking)": model.embed}
    for name, source in model.sources.items():
        steps[f"  {name} top-{model.fetch}"] = lambda chunk, s=source: s.recommend(chunk, model.fetch)
    steps["recommend"] = lambda chunk: model.recommend(chunk, K)
    steps["recommend + explain"] = served
    return {
        name: {batch: _timed(lambda s=step, b=batch: s(contexts[:b]), batch) for batch in BATCHES}
        for name, step in steps.items()
    }


def dump(model: Fusion, contexts: Sequence[UserContext], path: str) -> None:
    """Every user's top-``K`` (ids, scores rounded to 1e-9) and explanations, as JSON."""
    out = {}
    for start in range(0, len(contexts), max(BATCHES)):
        chunk = contexts[start : start + max(BATCHES)]
        for user, ranked in zip(chunk, model.recommend(chunk, K), strict=True):
            out[user.user_id] = {"items": [[i, round(s, 9)] for i, s in ranked], "why": model.explain(user, ranked)}
    Path(path).write_text(json.dumps(out, indent=0, sort_keys=True))


@click.command()
@click.option("--items", "n_items", default=1682, show_default=True, help="Catalog size (ml-100k: 1,682).")
@click.option("--users", "n_users", default=943, show_default=True)
@click.option("--events", "n_events", default=100_000, show_default=True, help="Events (ml-100k: 100,000).")
@click.option("--lists", type=click.Path(dir_okay=False), help="Also write every user's list here (JSON).")
def main(n_items: int, n_users: int, n_events: int, lists: str | None) -> None:
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    with tempfile.TemporaryDirectory() as model_dir:
        model, contexts = build(Path(model_dir), n_items, n_users, n_events)
        if lists:
            dump(model, contexts, lists)
        figures = measure(model, contexts)
    table = Table(title=f"fusion, 1 thread ({n_items:,} items, {len(contexts):,} users, {n_events:,} events, k={K})")
    table.add_column("step")
    for batch in BATCHES:
        table.add_column(f"batch {batch}, ms/user", justify="right")
    for name, by_batch in figures.items():
        table.add_row(name, *(f"{by_batch[b]:.3f}" for b in BATCHES))
    Console().print(table)


if __name__ == "__main__":
    main()
