"""A backtest report built from synthetic outcomes (no broker, no model), for the report tests."""

from __future__ import annotations

from collections import Counter

from streamrec.infra.backtest import BacktestConfig, Run
from streamrec.infra.backtest_report import build_report
from streamrec.infra.gating import Split
from streamrec.models import metrics
from streamrec.models.prequential import Context, Produced, Published, prequential
from streamrec.settings import Settings
from streamrec.types import Event, Item

ITEMS = [Item(f"i{n}", f"Movie {n} <b>&", category="Drama" if n % 2 else "Comedy, Drama") for n in range(30)]


def synthetic_run(name: str, shift: int) -> Run:
    """Three users with ten scored events each; lists shifted by ``shift`` items."""
    events, lists = [], []
    for u in range(3):
        for n in range(10):
            at = 100.0 + 10 * n + u
            lists.append(
                Published(f"u{u}", tuple(f"i{(n + j + shift) % 30}" for j in range(20)), n + 1, at - 5 + 0.02 * (u + 1))
            )
            events.append(Produced(f"u{u}", f"i{n + 2}", 1000.0 * n + u, n + 2, at, "click"))
    return Run(name, prequential(events, lists), 50, 1.0, 2.0, 3.0, 0)


def built_report() -> dict:
    """Two recommenders over three users' scored events."""
    runs = [synthetic_run("popularity", 0), synthetic_run("cooccurrence", 1)]
    cut = Split(warmup=50, train_counts=Counter({f"i{n}": 30 - n for n in range(20)}), warmup_ordinals={"u0": 1})
    cut.scored = [
        (Event(o.event.user_id, o.event.item_id, "click", o.event.ts), o.event.ordinal) for o in runs[0].outcomes
    ]
    context = Context([i.item_id for i in ITEMS], cut.train_counts, metrics.category_sets(ITEMS))
    config = BacktestConfig(("popularity", "cooccurrence"), 500.0, None, 4, 64, 7, None, "synthetic")
    return build_report(runs, cut, context, ITEMS, config, Settings())
