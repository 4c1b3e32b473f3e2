"""Model-side costs on this machine, 1 thread: sequence encoder per event, FAISS queries/s.

    python bench/bench_models.py [--model-dir DIR]

Encoder: user vectors for full, mixed and short windows (random items; an artifact's
weights if one exists under --model-dir, else a fresh ml-100k-sized model: same cost),
as the worker computes them (`encode_users`) and, for the ratio, every position of
windows padded to the model's window.
FAISS: exact inner-product top-``k`` with a 50-item exclusion set, over the ml-100k
catalog (1,682 items) and a synthetic 100k-item catalog.
"""

from __future__ import annotations

import time

import click
import faiss
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from streamrec.models.artifact import load_latest
from streamrec.models.retrieval import ItemIndex
from streamrec.models.sequence import SequenceConfig, SequenceEncoder, encode_users, gap_buckets, pack
from streamrec.models.transformer import EMBED_BATCH

ML100K_ITEMS = 1682
CATALOG_SIZES = (ML100K_ITEMS, 100_000)
BATCHES = (1, 64, 256)
# Each measurement runs at least this long, so timer noise and warm-up are negligible.
MIN_SECONDS = 2.0
EXCLUDED = 50


def _timed(fn, units_per_call: int) -> float:
    """Seconds per unit, over repeated calls for at least `MIN_SECONDS` (after one warm-up)."""
    fn()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < MIN_SECONDS:
        fn()
        calls += 1
    return (time.perf_counter() - started) / (calls * units_per_call)


# Window lengths of a batch: all full, uniform over 1..window, and short (1..8 events).
LENGTHS = {"full windows": (1.0, 1.0), "mixed lengths": (0.0, 1.0), "short windows": (0.0, 8 / 50)}


def bench_encoder(model: SequenceEncoder, rng: np.random.Generator) -> dict[tuple[str, int], tuple[float, float]]:
    """µs per user vector (= per event, the worker embeds once per event) by window lengths
    and batch size: `encode_users` against every position of windows padded to the
    model's window (what it computed before)."""
    n, window = model.config.n_items, model.config.window
    with torch.inference_mode():
        items = model.item_vectors(torch.arange(n + 1), torch.zeros(n + 1, model.config.text_dim))
    out = {}
    for name, (low, high) in LENGTHS.items():
        for batch in BATCHES:
            lengths = rng.integers(max(1, round(low * window)), round(high * window) + 1, batch)
            windows = [
                (rng.integers(1, n + 1, m), rng.integers(1, 4, m), np.sort(rng.uniform(0, 1e6, m))) for m in lengths
            ]

            def fast(windows: list = windows) -> None:
                with torch.inference_mode():
                    encode_users(model, windows, items, EMBED_BATCH)

            def every_position(windows: list = windows) -> None:
                with torch.inference_mode():
                    idx, types, ts = pack(windows, window)
                    model(items[idx], types, gap_buckets(ts, types > 0, model.config.gap_buckets))[:, -1]

            out[name, batch] = (1e6 * _timed(fast, batch), 1e6 * _timed(every_position, batch))
    return out


def bench_faiss(d: int, rng: np.random.Generator, k: int = 10, batch: int = 64) -> dict[int, float]:
    """Queries per second by catalog size (batched ``batch`` queries per search)."""
    out = {}
    for size in CATALOG_SIZES:
        index = ItemIndex(d)
        ids = [str(i) for i in range(size)]
        index.add(ids, rng.standard_normal((size, d)).astype(np.float32))
        queries = rng.standard_normal((batch, d)).astype(np.float32)
        exclude = [set(rng.choice(ids, EXCLUDED).tolist()) for _ in range(batch)]
        out[size] = 1.0 / _timed(lambda q=queries, x=exclude, i=index: i.search(q, k, x), batch)
    return out


@click.command()
@click.option("--model-dir", default=".streamrec/models", show_default=True)
def main(model_dir: str) -> None:
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    artifact = load_latest(model_dir)
    model = artifact.model if artifact else SequenceEncoder(SequenceConfig(n_items=ML100K_ITEMS)).eval()
    source = f"artifact {artifact.version}" if artifact else "fresh model"
    encoder, queries = bench_encoder(model, rng), bench_faiss(model.config.d, rng)
    table = Table(title=f"models, 1 thread ({source}, d={model.config.d}, window={model.config.window})")
    for column in ("block", "setting", "figure", "every position (before)", "ratio"):
        table.add_column(column, justify="left" if column in ("block", "setting") else "right")
    for (lengths, batch), (us, before) in encoder.items():
        row = (f"{us:,.0f} µs/event", f"{before:,.0f} µs/event", f"{before / us:.1f}x")
        table.add_row("sequence encoder", f"{lengths}, batch {batch}", *row)
    for size, qps in queries.items():
        table.add_row(
            "FAISS IndexFlatIP top-10", f"{size:,} items, {EXCLUDED} excluded", f"{qps:,.0f} queries/s", "", ""
        )
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
