"""Markdown tables from a backtest's report.json: NDCG@10 overall and per time window for
each row (frozen, ``+retrain``, others), and the retraining rounds (docs/trainer.md).

    python bench/retrain_figures.py backtest-report/report.json
"""

from __future__ import annotations

import json
import sys
from typing import Any


def accuracy_table(report: dict[str, Any]) -> list[str]:
    lines = ["| recommender | NDCG@10 | HR@10 | NDCG@10 per time window |", "|---|---|---|---|"]
    for name, row in report["recommenders"].items():
        windows = " ".join(f"{w['ndcg@10']:.3f}" for w in report["over_time"][name])
        lines.append(f"| {name} | {row['ndcg@10']:.4f} | {row['hr@10']:.4f} | {windows} |")
    return lines


def rounds_table(report: dict[str, Any]) -> list[str]:
    lines = ["| run | at event | kind | promoted | reason | round s | CPU s | reload s |", "|---" * 8 + "|"]
    for r in report.get("retraining", []):
        promoted = "yes" if r["promoted"] else "no"
        cells = [r["recommender"], r["at_event"], r["kind"], promoted, r["reason"], r["seconds"], r["cpu_s"]]
        lines.append("| " + " | ".join(str(c) for c in [*cells, r["reload_s"]]) + " |")
    return lines


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        report = json.load(f)
    print("\n".join([*accuracy_table(report), "", *rounds_table(report)]))
