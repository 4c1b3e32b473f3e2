"""Scale benchmark: a million users and 100k items on one machine (issue 13).

    python bench/bench_scale.py                                   # what finishes here in minutes
    python bench/bench_scale.py --events 2000000 --json           # longer worker run
    python bench/bench_scale.py --parts serving,ann --serve-users 1000000

Three parts (``--parts``), each on its own embedded stack:

- ``worker``: ``--events`` synthetic events (Zipf items, uniform users among ``--users``)
  streamed through one worker (``--recommender``, on an untrained artifact of ``--items``
  items: a trained one's cost). Prints events/s (extrapolate: the whole run is this rate),
  RocksDB state bytes per user touched, worker RSS sampled over the run and split into
  RocksDB's own memory (bounded by its options) and the rest (both must plateau), restart time (SIGTERM, start, ready) and hot-reload time (new version
  written -> swapped in).
- ``serving``: ``--serve-users`` lists produced to ``recommendations`` directly (not
  computed by a worker: the worker part measures that side), read by one HTTP server into
  its RocksDB store; prints the fill rate, bytes per user on disk, server RSS over time,
  restart time (resuming from stored offsets), and a wrk load test (random users, so
  mostly cache misses: the worst case) with GET/s and p50/p99. ``--baseline-python``
  (another checkout's venv python, e.g. main's) also starts that checkout's server on the
  same topic right after, and load-tests it the same way: the before/after ratio at
  the same moment of a shared machine, and its start-up (a full re-read) against ours.
- ``ann``: a trained transformer (``--model-dir``; trained on ml-100k first if empty) is
  given ``--items`` synthetic items with text (embedded by its text tower); user vectors
  from random windows are searched exactly and with the IVF index: recall@100 and
  queries/s both ways, and the share of cells probed against recall.

The machine is shared (2 cores): the load average is printed with each part.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click
import httpx
import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table
from scale_tools import Sampler, folder_bytes, plateau, rss_mb, run_wrk, spark  # type: ignore[import-not-found]

from streamrec.infra.broker import SERVER_STATE, free_port
from streamrec.infra.stack import Stack
from streamrec.settings import Settings
from streamrec.streams.replay import Pacer, produce_items, produce_raw, replay
from streamrec.streams.sources import synthetic_catalog, synthetic_events

PARTS = ("worker", "serving", "ann")
DATA = Path(__file__).resolve().parent.parent / ".streamrec" / "bench-scale"
LIST_ITEMS = 10
MB = 1 << 20  # as rss_mb counts
STORE_METRIC = "streamrec_worker_store_memory_bytes"
SAMPLE_EVERY_S = 2.0
DRAIN_TIMEOUT_S = 3600.0
POLL_S = 1.0
RELOAD_TIMEOUT_S = 600.0
TOP = 100
ANN_QUERIES = 2000
# Shares of the IVF cells probed, to show what recall each buys (the index's own is PROBE_SHARE).
PROBE_SHARES = (1 / 16, 1 / 8, 1 / 4, 1 / 3)
TRAIN_SECONDS = 180.0
WINDOW = 50  # longest query window (the transformer's)

console = Console(stderr=True)
Series = list[tuple[float, float]]


def settings_for(part: str, **overrides: Any) -> Settings:
    return Settings.load(overrides={"data_dir": str(DATA / part), "http_port": free_port(), **overrides})


def scrape(url: str) -> dict[str, float]:
    """Every sample of a Prometheus page by name (labels dropped: the bench reads unlabelled ones)."""
    text = httpx.get(url, timeout=5).text
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(what: str, done: Any, timeout_s: float) -> float:
    """Poll ``done()`` until true; seconds it took."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not done after {timeout_s:.0f} s")
        time.sleep(POLL_S / 10)
    return time.monotonic() - started


def memory(series: Series, until: float | None = None, as_: str = "rss") -> dict[str, Any]:
    """``series`` (MB over time), and its plateau figures up to ``until`` (s) if given."""
    return {f"{as_}_mb": plateau([(t, mb) for t, mb in series if until is None or t <= until]), f"{as_}_series": series}


def store_mb(url: str) -> float | None:
    """What RocksDB holds in memory in the worker at ``url`` (all kinds), MB; None if unreachable."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return None
    held = (s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == STORE_METRIC)
    return sum(held) / MB


def without(series: Series, part: Series) -> Series:
    """``series`` minus ``part``, at the times both were sampled."""
    at = dict(part)
    return [(t, round(mb - at[t], 1)) for t, mb in series if t in at]


# -- worker


def bench_worker(users: int, items: int, events: int, recommender: str) -> dict[str, Any]:
    from bench_fusion import save_untrained  # type: ignore[import-not-found]  # torch: only here

    settings = settings_for("worker", recommender=recommender)
    model_dir = Path(settings.model_dir)
    catalog = synthetic_catalog(items)
    save_untrained(model_dir, catalog)
    seen: set[str] = set()

    def counted() -> Any:
        for event in synthetic_events(events, users, items, seed=1):
            seen.add(event.user_id)
            yield event

    with Stack(settings, workers=1) as stack, Sampler(SAMPLE_EVERY_S) as sampler:
        url = stack.metrics_urls["worker-0"]
        sampler.watch("worker", stack.processes["worker-0"].pid)
        sampler.track("worker store", partial(store_mb, url))
        produce_items(catalog, stack.settings)  # events that overtake their item wait for it (parked)
        started = time.monotonic()
        replay(counted(), stack.settings, Pacer(rate=None), total=events)
        produced_s = time.monotonic() - started
        wait_for("events", lambda: scrape(url)["streamrec_worker_events_applied_total"] >= events, DRAIN_TIMEOUT_S)
        wall = time.monotonic() - started
        # The last round before the restart may scrape a stopping worker (its stores
        # closed): the series end one round earlier.
        streamed_at = sampler.elapsed() - SAMPLE_EVERY_S
        state = folder_bytes(Path(stack.settings.data_dir) / "workers")
        restart_s = restart_worker(stack, sampler)
        reload_s = hot_reload(stack, model_dir, catalog)
    rss, store = sampler.series["worker"], sampler.series["worker store"]
    return {
        "events": events,
        "users_touched": len(seen),
        "items": items,
        "recommender": recommender,
        "produce_s": round(produced_s, 1),
        "wall_s": round(wall, 1),
        "events_per_s": round(events / wall, 1),
        "state_bytes": state,
        "state_bytes_per_user": round(state / max(1, len(seen)), 1),
        "restart_s": round(restart_s, 1),
        "hot_reload_s": round(reload_s, 1),
        "load_avg": os.getloadavg(),
        # The series go on through restart and reload. RocksDB's share is bounded by its
        # options; what must plateau besides it is the rest (Python, torch, the model).
        **memory(rss, until=streamed_at),
        **memory(store, until=streamed_at, as_="store"),
        **memory(without(rss, store), until=streamed_at, as_="rest"),
    }


def restart_worker(stack: Stack, sampler: Sampler) -> float:
    """SIGTERM the worker, start it again on its state; seconds until it is ready."""
    stack.kill("worker-0", signal.SIGTERM)
    started = time.monotonic()
    stack.start_worker("worker-0")
    sampler.watch("worker", stack.processes["worker-0"].pid)
    stack.wait_workers_ready(["worker-0"])
    return time.monotonic() - started


def hot_reload(stack: Stack, model_dir: Path, catalog: list[Any]) -> float:
    """Write a new model version; seconds until the worker has swapped it in."""
    from bench_fusion import save_untrained  # type: ignore[import-not-found]

    url = stack.metrics_urls["worker-0"]
    before = scrape(url)["streamrec_worker_model_reloads_total"]
    started = time.monotonic()
    save_untrained(model_dir, catalog)
    wait_for("hot reload", lambda: scrape(url)["streamrec_worker_model_reloads_total"] > before, RELOAD_TIMEOUT_S)
    return time.monotonic() - started


# -- serving


def lists_for(users: int, items: int, seed: int = 3) -> Any:
    """``(user, list JSON)`` for users u0..u{n-1}: 10 random items each, as a worker writes them."""
    rng = np.random.default_rng(seed)
    for start in range(0, users, 10_000):
        picks = rng.integers(0, items, size=(min(10_000, users - start), LIST_ITEMS)).tolist()
        for offset, row in enumerate(picks):
            user = f"u{start + offset}"
            entries = [{"item_id": f"s{i}", "score": round(1.0 - r / LIST_ITEMS, 6)} for r, i in enumerate(row)]
            yield (
                user,
                orjson.dumps(
                    {
                        "user_id": user,
                        "items": entries,
                        "generated_at": time.time(),
                        "source_event_ts": 1.7e9,
                        "source_event_id": f"e{start + offset}",
                        "model": "synthetic",
                        "user_events": 1,
                    }
                ),
            )


def bench_serving(users: int, items: int, wrk_seconds: float, connections: int, baseline: str | None) -> dict[str, Any]:
    settings = settings_for("serving")
    with Stack(settings, workers=0, serve=True) as stack, Sampler(SAMPLE_EVERY_S) as sampler:
        sampler.watch("server", stack.processes["server"].pid)
        started = time.monotonic()
        produce_raw(stack.settings, stack.settings.topic_recommendations, lists_for(users, items))
        produced_s = time.monotonic() - started
        wait_for("lists", lambda: serves(stack.http_url, users), DRAIN_TIMEOUT_S)
        fill_s = time.monotonic() - started
        store = folder_bytes(Path(stack.settings.data_dir) / SERVER_STATE)
        stack.kill("server", signal.SIGTERM)
        started = time.monotonic()
        stack.start_server()  # returns once /healthz answers 200: every reader caught up
        restart_s = time.monotonic() - started
        sampler.watch("server", stack.processes["server"].pid)
        after = httpx.get(f"{stack.http_url}/healthz", timeout=5).json()
        load = run_wrk(stack.http_url, users, wrk_seconds, connections, 2, stack.processes["server"].pid)
        before = baseline_load(stack.settings, baseline, users, wrk_seconds, connections) if baseline else None
    return {
        "users": users,
        "produce_s": round(produced_s, 1),
        "fill_s": round(fill_s, 1),
        "fill_lists_per_s": round(users / fill_s, 1),
        "store_bytes": store,
        "store_bytes_per_user": round(store / users, 1),
        "restart_s": round(restart_s, 2),
        "after_restart": {"users_with_lists": after["users_with_lists"], "lists_reread": after["lists_consumed"]},
        "load": load,
        "load_avg": os.getloadavg(),
        **memory(sampler.series["server"]),
        **({"baseline": before} if before else {}),
    }


def baseline_load(settings: Settings, python: str, users: int, seconds: float, connections: int) -> dict[str, Any]:
    """Another checkout's server (``python -m streamrec serve``) on the same broker: its
    start-up until it serves every user, its memory then, and the same wrk load."""
    settings = settings.with_(http_port=free_port(), data_dir=str(DATA / "baseline"))
    url = f"http://{settings.http_host}:{settings.http_port}"
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(settings.data_dir) / "server.log", "ab") as log:
        process = subprocess.Popen(
            [python, "-m", "streamrec", "serve"],
            env={**os.environ, **settings.as_env()},  # a checkout without our settings ignores them
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.monotonic()
        wait_for("baseline server", lambda: serves(url, users), DRAIN_TIMEOUT_S)
        ready_s = time.monotonic() - started
        rss = rss_mb(process.pid)
        load = run_wrk(url, users, seconds, connections, 2, process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return {"python": python, "ready_s": round(ready_s, 1), "rss_mb": rss, "load": load}


def serves(url: str, users: int) -> bool:
    """The server at ``url`` is healthy and holds ``users`` lists."""
    try:
        response = httpx.get(f"{url}/healthz", timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json()["users_with_lists"] >= users


# -- ann


def trained_model(model_dir: Path) -> Path:
    """``model_dir``, after training a transformer on ml-100k into it if it has none."""
    from streamrec.models.artifact import load_latest

    if load_latest(model_dir) is None:
        console.print(f"training a transformer on ml-100k for up to {TRAIN_SECONDS:.0f} s into {model_dir}")
        command = [sys.executable, "-m", "streamrec", "train", "--dataset", "ml-100k", "--no-fusion"]
        command += ["--max-seconds", str(TRAIN_SECONDS), "--out", str(model_dir)]
        subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return model_dir


def bench_ann(items: int, model_dir: Path, queries: int) -> dict[str, Any]:
    import faiss
    from scale_data import encode_catalog, text_catalog  # type: ignore[import-not-found]

    from streamrec.models.retrieval import PROBE_SHARE
    from streamrec.models.text_encoder import TextEncoder
    from streamrec.models.transformer import TransformerRecommender
    from streamrec.types import Interaction, UserContext

    cache = DATA / "text-cache"
    catalog = text_catalog(items)
    encode_catalog(catalog, cache)  # fills the cache the recommender's encoder reads
    model = TransformerRecommender.from_dir(trained_model(model_dir), encoder=TextEncoder(cache_dir=cache))
    started = time.monotonic()
    model.update_items(catalog)
    index = model.index
    add_s = time.monotonic() - started
    rng = np.random.default_rng(5)
    ids = model.catalog.ids
    windows = [rng.integers(0, len(ids), size=rng.integers(1, WINDOW + 1)).tolist() for _ in range(queries)]
    users = [
        UserContext(f"q{n}", tuple(Interaction(ids[i], "view", float(t)) for t, i in enumerate(window)))
        for n, window in enumerate(windows)
    ]
    vectors = np.hstack([model.embed(users), np.ones((queries, 1), np.float32)])  # the boost dimension: 1
    rows = np.flatnonzero(index.available)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(index.dim))
    flat.add_with_ids(index.vectors[rows], rows.astype(np.int64))
    exact, exact_qps = timed_search(lambda q: flat.search(q, TOP), vectors)
    sweep = {}
    for share in PROBE_SHARES:
        index.index.nprobe = max(1, round(index.index.nlist * share))
        found, qps = timed_search(lambda q: index.nearest(q, TOP), vectors)
        sweep[f"1/{round(1 / share)}"] = {"nprobe": index.index.nprobe, **recall(found, exact), "queries_per_s": qps}
    index.index.nprobe = max(1, round(index.index.nlist * PROBE_SHARE))
    found, ann_qps = timed_search(lambda q: index.nearest(q, TOP), vectors)
    return {
        "items": len(index),
        "approximate": index.approximate,
        "nlist": index.index.nlist,
        "nprobe": index.index.nprobe,
        "add_items_s": round(add_s, 1),
        **recall(found, exact),
        "exact_queries_per_s": exact_qps,
        "ann_queries_per_s": ann_qps,
        "score_error_vs_exact": score_error(found, exact),
        "probe_sweep": sweep,
        "load_avg": os.getloadavg(),
    }


Found = tuple[np.ndarray, np.ndarray]  # (scores, rows), FAISS-style


def timed_search(search: Callable[[np.ndarray], Found], vectors: np.ndarray) -> tuple[Found, float]:
    """Top-`TOP` per query, one query at a time (as a worker's small batches do), and queries/s."""
    started = time.perf_counter()
    results = [search(vectors[i : i + 1]) for i in range(len(vectors))]
    qps = round(len(vectors) / (time.perf_counter() - started), 1)
    return (np.vstack([s for s, _ in results]), np.vstack([r for _, r in results])), qps


def recall(found: Found, exact: Found) -> dict[str, float]:
    """Mean and 5th-percentile recall@`TOP` of ``found`` against ``exact``."""
    pairs = zip(found[1].tolist(), exact[1].tolist(), strict=True)
    per_query = np.array([len(set(f) & set(e)) / TOP for f, e in pairs])
    return {
        "recall_at_100": round(float(per_query.mean()), 4),
        "recall_p5": round(float(np.percentile(per_query, 5)), 4),
    }


def score_error(found: Found, exact: Found) -> float:
    """Largest difference between the IVF's score of an item and the flat index's (boost included)."""
    worst = 0.0
    for f_scores, f_rows, e_scores, e_rows in zip(*found, *exact, strict=True):
        truth = dict(zip(e_rows.tolist(), e_scores.tolist(), strict=True))
        worst = max(
            [worst, *(abs(s - truth[r]) for s, r in zip(f_scores.tolist(), f_rows.tolist(), strict=True) if r in truth)]
        )
    return worst


# -- output


def show(results: dict[str, Any]) -> None:
    table = Table(title="bench_scale")
    table.add_column("part")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for part, figures in results.items():
        for name, value in figures.items():
            if name.endswith("series"):
                mbs = [mb for _, mb in value]
                value = f"{spark(mbs)} ({len(mbs)} samples every {SAMPLE_EVERY_S:.0f} s)"
            table.add_row(part, name, str(value))
    Console().print(table)
    for part, figures in results.items():
        for name, value in figures.items():
            if name.endswith("series"):
                print(f"{part} {name} (s, MB): {value}")


@click.command()
@click.option("--parts", default=",".join(PARTS), show_default=True, help="Comma-separated: worker,serving,ann.")
@click.option("--users", default=1_000_000, show_default=True, help="Users the worker's events come from.")
@click.option("--items", default=100_000, show_default=True, help="Catalog size (worker and ANN).")
@click.option("--events", default=100_000, show_default=True, help="Events streamed through the worker.")
@click.option("--recommender", default="transformer", show_default=True)
@click.option("--serve-users", default=1_000_000, show_default=True, help="Users with a list in the server.")
@click.option("--wrk-seconds", default=15.0, show_default=True)
@click.option("--connections", default=16, show_default=True)
@click.option("--model-dir", default=str(DATA / "trained"), show_default=True, help="Trained transformer (ANN).")
@click.option("--ann-queries", default=ANN_QUERIES, show_default=True)
@click.option("--baseline-python", default=None, help="Also load-test this python's streamrec server (serving).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
def main(
    parts: str,
    users: int,
    items: int,
    events: int,
    recommender: str,
    serve_users: int,
    wrk_seconds: float,
    connections: int,
    model_dir: str,
    ann_queries: int,
    baseline_python: str | None,
    as_json: bool,
) -> None:
    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    unknown = set(chosen) - set(PARTS)
    if unknown:
        raise click.BadParameter(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    results: dict[str, Any] = {}
    for part in chosen:
        console.rule(f"{part} (load average {os.getloadavg()[0]:.1f})")
        started = time.monotonic()
        if part == "worker":
            results[part] = bench_worker(users, items, events, recommender)
        elif part == "serving":
            results[part] = bench_serving(serve_users, items, wrk_seconds, connections, baseline_python)
        else:
            results[part] = bench_ann(items, Path(model_dir), ann_queries)
        results[part]["part_s"] = round(time.monotonic() - started, 1)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        show(results)


if __name__ == "__main__":
    main()
