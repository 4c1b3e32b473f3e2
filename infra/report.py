"""Backtest reports: ``report.json`` and one self-contained ``report.html``.

The HTML has no scripts and loads nothing: charts are inline SVG (`infra.charts`), styles
are inline, so it opens offline (and in CI's headless Chromium) exactly as written.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

import orjson

from streamrec.infra.charts import CHART_W, MARKER_COLOUR, Axes, esc, line_chart, svg

TEMPLATE = Path(__file__).with_name("report_template.html")
# One colour per recommender (colour-blind-safe Okabe-Ito, then Tol's muted), then the data distributions.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255", "#44AA99", "#999933")
DATA_COLOURS = {"training interactions": "#555555", "scored interactions": "#999999"}
# Columns of the headline table, in order (everything else is in the full table).
HEADLINE = (
    "hr@10",
    "ndcg@10",
    "mrr@10",
    "hr@20",
    "ndcg@20",
    "coverage@10",
    "gini@10",
    "tail_share@10",
    "arp@10",
    "novelty@10",
    "ild@10",
    "latency_p50_ms",
    "latency_p99_ms",
    "no_list",
    "events",
    "wall_s",
    "throughput_eps",
)
OVER_TIME = ("hr@10", "ndcg@10", "coverage@10", "latency_p50_ms")
# Exposure measures the accuracy/long-tail trade-off is drawn against (x axes).
TRADE_OFF = ("tail_share@10", "coverage@10")
# A re-ranked recommender's name: ``<base>+tail@<knob>`` (models.registry).
KNOB_MARK = "+tail@"


def write(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    html_path.write_text(render(report), encoding="utf-8")
    return json_path, html_path


def render(report: Mapping[str, Any]) -> str:
    """The whole HTML page."""
    names = list(report["recommenders"])
    colours = {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(names)}
    data = report["data"]
    summary = (
        f"{esc(data['source'])}: {data['warmup_events']:,} warm-up events, {data['scored_events']:,} scored events "
        f"from train_until = {data['train_until']:.0f}; {data['items']:,} items. Seed {report['config']['seed']}, "
        f"in flight {report['config']['in_flight']}, lookahead {report['config']['lookahead']}, "
        f"rate {report['config']['rate'] or 'max'}. {provenance(report)}"
    )
    body = "\n".join(
        [
            section("Metrics", metrics_table(report["recommenders"], HEADLINE) + full_table(report["recommenders"])),
            section("Experiments", experiments_section(report.get("experiments", {}))),
            section(
                "Metrics over time",
                over_time_charts(report["over_time"], colours, report.get("retraining", [])),
            ),
            section("Retraining", retraining_table(report.get("retraining", []), report["over_time"])),
            section("Long tail", long_tail_chart(report["long_tail"], colours)),
            section("Accuracy vs long tail", trade_off_charts(report["recommenders"], colours)),
            section("Freshness", latency_chart(report["latency_histogram"], colours, report["recommenders"])),
            section("Per-user drill-down", drilldown(report["drilldown"])),
            section(
                "Run",
                f"<pre>{esc(orjson.dumps({k: report[k] for k in ('config', 'versions', 'model')}, option=orjson.OPT_INDENT_2).decode())}</pre>",
            ),
        ]
    )
    page = Template(TEMPLATE.read_text(encoding="utf-8"))
    return page.substitute(title="streamrec backtest", summary=summary, body=body)


def provenance(report: Mapping[str, Any]) -> str:
    """When the page was made, from which code (git revision), and how long the replays took.

    >>> provenance({"recommenders": {"a": {"wall_s": 12.0}}, "git_revision": "abc1234"}).split(" from ")[1]
    'git abc1234; replays took 12 s (wall time).'
    """
    made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    revision = report.get("git_revision") or git_revision()
    wall = sum(row.get("wall_s", 0.0) for row in report["recommenders"].values())
    return f"Generated {made} from git {revision}; replays took {wall:,.0f} s (wall time)."


def git_revision() -> str:
    """The short commit of the code (with "+changes" if the work tree differs), or "unknown"."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty.strip() else "")


def section(title: str, content: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{content}\n</section>'


def fmt(value: object, key: str = "") -> str:
    """Table cell: times and rates with one decimal, ratios with four."""
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        coarse = abs(value) >= 100 or key.endswith(("_ms", "_s", "_eps"))
        return f"{value:,.1f}" if coarse else f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else esc(value)


def metrics_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str]) -> str:
    """One row per recommender."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        f'<tr><td class="name">{esc(name)}</td>'
        + "".join(f"<td>{fmt(row.get(c, float('nan')), c)}{_bounds(row, c)}</td>" for c in columns)
        + "</tr>"
        for name, row in rows.items()
    )
    return f'<div class="scroll"><table class="metrics"><tr><th class="name">recommender</th>{head}</tr>{body}</table></div>'


def _bounds(row: Mapping[str, Any], column: str) -> str:
    """The 95% interval under a cell, when the row has one for ``column`` (`models.experiments.interval_columns`).

    >>> _bounds({"x_low": 0.1, "x_high": 0.2}, "x"), _bounds({}, "x")
    ('<br><small class="ci">[0.1000, 0.2000]</small>', '')
    """
    low, high = row.get(f"{column}_low"), row.get(f"{column}_high")
    if low is None or high is None:
        return ""
    return f'<br><small class="ci">[{fmt(low, column)}, {fmt(high, column)}]</small>'


def full_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    columns = sorted({c for row in rows.values() for c in row})
    return f"<details><summary>all metrics</summary>{metrics_table(rows, columns)}</details>"


def over_time_charts(
    rows_by_name: Mapping[str, Sequence[Mapping[str, float]]],
    colours: Mapping[str, str],
    rounds: Sequence[Mapping[str, Any]] = (),
) -> str:
    """One chart per metric of `OVER_TIME`; x = days since the first scored event. Each
    trainer round of ``rounds`` is a vertical marker in its run's colour, labelled with
    the version it promoted or "refused"."""
    starts = [row["start_ts"] for rows in rows_by_name.values() for row in rows]
    if not starts:
        return "<p>no scored events</p>"
    origin = min(starts)
    markers = [
        (
            r["version"] if r["promoted"] else "refused",
            (r["at_ts"] - origin) / 86400,
            colours.get(r["recommender"], MARKER_COLOUR),
        )
        for r in rounds
    ]
    charts = [
        line_chart(
            *_with_bands(rows_by_name, metric, origin, colours),
            metric,
            "event time (days since first scored event)",
            metric,
            "over-time",
            f"{metric} per equal span of event time (window midpoints); dashed: its 95% interval where there is one"
            + ("; vertical lines: trainer rounds (promoted version, or refused)." if markers else "."),
            dashed=tuple(f"{name} {end}" for name in rows_by_name for end in BAND_ENDS),
            markers=markers,
        )
        for metric in OVER_TIME
    ]
    return f'<div class="charts">{"".join(charts)}</div>'


# A window's 95% interval is drawn as two dashed lines (``<name> 95% low|high``) in its run's colour.
BAND_ENDS = ("95% low", "95% high")


def _with_bands(
    rows_by_name: Mapping[str, Sequence[Mapping[str, float]]], metric: str, origin: float, colours: Mapping[str, str]
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, str]]:
    """Each run's ``metric`` per window, and its interval's ends when the rows carry them."""
    series: dict[str, list[tuple[float, float]]] = {}
    all_colours = dict(colours)
    for name, rows in rows_by_name.items():
        days = [(r["start_ts"] + r["end_ts"]) / 2 / 86400 - origin / 86400 for r in rows]
        series[name] = [(d, r[metric]) for d, r in zip(days, rows, strict=True)]
        for end, key in zip(BAND_ENDS, ("low", "high"), strict=True):
            if rows and all(f"{metric}_{key}" in r for r in rows):
                series[f"{name} {end}"] = [(d, r[f"{metric}_{key}"]) for d, r in zip(days, rows, strict=True)]
                all_colours[f"{name} {end}"] = colours[name]
    return series, all_colours


RETRAINING_COLUMNS = ("recommender", "at_event", "day", "kind", "version", "promoted", "reason", "seconds", "cpu_s")


def retraining_table(
    rounds: Sequence[Mapping[str, Any]], over_time: Mapping[str, Sequence[Mapping[str, float]]]
) -> str:
    """The trainer rounds of ``+retrain`` runs; ``day`` places each on the over-time charts' axis."""
    if not rounds:
        return "<p>no retraining (run with --retrain-every N)</p>"
    origin = min((row["start_ts"] for rows in over_time.values() for row in rows), default=0.0)
    head = "".join(f"<th>{c}</th>" for c in RETRAINING_COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{fmt(_round_cell(r, c, origin), c.replace('seconds', '_s'))}</td>" for c in RETRAINING_COLUMNS)
        + "</tr>"
        for r in rounds
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _round_cell(entry: Mapping[str, Any], column: str, origin: float) -> object:
    if column == "day":
        return (entry["at_ts"] - origin) / 86400
    if column == "promoted":
        return "yes" if entry["promoted"] else "no"
    return "–" if entry[column] is None else entry[column]


EXPERIMENT_METRICS = ("hr@10", "ndcg@10", "mrr@10", "coverage@10", "tail_share@10")


def experiments_section(experiments: Mapping[str, Mapping[str, Any]]) -> str:
    """Per experiment, its arms side by side (estimate, 95% interval), each treatment arm's
    difference from control, and the arm's recommender replayed alone on the same users."""
    if not experiments:
        return "<p>no experiment (run with --experiment name=arm:recommender,...)</p>"
    head = "".join(f"<th>{esc(m)}</th>" for m in EXPERIMENT_METRICS)
    tables = []
    for name, summary in experiments.items():
        rows = []
        for arm, found in summary["arms"].items():
            label = f"{arm}: {found['recommender']} ({found['share']:.0%}, {found['users']} users)"
            rows.append(_experiment_row(label, found))
            if "difference" in found:
                decision = found.get("decision", {}).get("action", "")
                rows.append(_experiment_row(f"{arm} − {summary['control']} ({decision})", found["difference"]))
            if "alone_same_users" in found:
                rows.append(_experiment_row(f"{found['recommender']} alone, same users", found["alone_same_users"]))
        tables.append(
            f'<h3>{esc(name)}</h3><table class="metrics"><tr><th class="name">arm</th>{head}</tr>{"".join(rows)}</table>'
        )
    return "".join(tables)


def _experiment_row(label: str, found: Mapping[str, Any]) -> str:
    cells = "".join(
        f'<td>{fmt(_number(found[m]["estimate"]), m)}<br><small class="ci">[{fmt(_number(found[m]["low"]), m)}, '
        f"{fmt(_number(found[m]['high']), m)}]</small></td>"
        for m in EXPERIMENT_METRICS
    )
    return f'<tr><td class="name">{esc(label)}</td>{cells}</tr>'


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def cumulative(shares: Sequence[float]) -> list[tuple[float, float]]:
    """(rank, cumulative share) with rank 1 = most popular item."""
    out, running = [], 0.0
    for rank, share in enumerate(shares, 1):
        running += share
        out.append((float(rank), running))
    return out


def long_tail_chart(tail: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    """Cumulative share of interactions and of exposure by training-popularity rank."""
    series = {
        "training interactions": cumulative(tail["train_share"]),
        "scored interactions": cumulative(tail["test_share"]),
        **{f"{name} exposure@10": cumulative(shares) for name, shares in tail["exposure_share"].items()},
    }
    all_colours = {**DATA_COLOURS, **{f"{n} exposure@10": c for n, c in colours.items()}}
    caption = (
        "Items ranked by training popularity (1 = most popular). A curve that reaches 1 early concentrates on the "
        f"head; the head ({tail['head_items']} items = 80% of training interactions) ends at the grey marker."
    )
    return line_chart(
        series,
        all_colours,
        "long tail: cumulative share by popularity rank",
        "item popularity rank",
        "cumulative share",
        "long-tail",
        caption,
        dashed=tuple(DATA_COLOURS),
        markers=[("head", float(tail["head_items"]), MARKER_COLOUR)],
    )


def knob_curves(names: Sequence[str]) -> dict[str, list[str]]:
    """``base -> [base, base+tail@k1, base+tail@k2, ...]`` by rising knob, for every base
    run with at least one knob (the base itself only if it was run too)."""
    curves: dict[str, list[tuple[float, str]]] = {}
    for name in names:
        base, mark, knob = name.partition(KNOB_MARK)
        if mark:
            curves.setdefault(base, []).append((float(knob), name))
    return {
        base: ([base] if base in names else []) + [name for _, name in sorted(points)]
        for base, points in curves.items()
    }


def trade_off_charts(rows: Mapping[str, Mapping[str, Any]], colours: Mapping[str, str]) -> str:
    """NDCG@10 against each of `TRADE_OFF`: one labelled point per recommender, and each
    tail knob's runs joined in knob order (the curve an operator picks a knob from)."""
    return f'<div class="charts">{"".join(trade_off_chart(rows, x_key, colours) for x_key in TRADE_OFF)}</div>'


def trade_off_chart(rows: Mapping[str, Mapping[str, Any]], x_key: str, colours: Mapping[str, str]) -> str:
    points = {
        name: (row[x_key], row["ndcg@10"]) for name, row in rows.items() if not math.isnan(row[x_key] + row["ndcg@10"])
    }
    if not points:
        return f"<p>ndcg@10 vs {esc(x_key)}: no data</p>"
    x_max = min(1.0, max(x for x, _ in points.values()) * 1.1) or 1.0  # both are shares
    axes = Axes((0.0, x_max), (0.0, max(y for _, y in points.values()) * 1.15 or 1.0))
    curves = "".join(
        axes.polyline([points[n] for n in names if n in points], colours[names[-1]], dashed=True)
        for names in knob_curves(list(points)).values()
    )
    dots = "".join(_labelled_point(axes, x, y, name, colours[name]) for name, (x, y) in points.items())
    caption = (
        f"NDCG@10 against {x_key}: up is more accurate, right spreads exposure further into the catalog. "
        "Dashed: one re-ranker's knob values, from its base recommender (knob 0) upwards."
    )
    frame = axes.frame(f"ndcg@10 vs {x_key}", x_key, "ndcg@10")
    return svg(frame + curves + dots, caption, "trade-off")


def _labelled_point(axes: Axes, x: float, y: float, name: str, colour: str) -> str:
    """A dot with its name beside it (left of it in the right third, so it stays inside)."""
    px, py = axes.px(x), axes.py(y)
    right_side = px < CHART_W * 2 / 3
    label_x, anchor = (px + 6, "start") if right_side else (px - 6, "end")
    return (
        f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"/>'
        f'<text class="point-label" x="{label_x:.1f}" y="{py - 5:.1f}" text-anchor="{anchor}" font-size="10">{esc(name)}</text>'
    )


def latency_chart(
    histograms: Mapping[str, Mapping[str, Sequence[float]]],
    colours: Mapping[str, str],
    rows: Mapping[str, Mapping[str, Any]],
) -> str:
    """Share of events per latency bin (ms), one step line per recommender, its p50 and p99
    (from ``rows``, the metrics) as markers in its colour."""
    series = {}
    for name, hist in histograms.items():
        total = sum(hist["counts"]) or 1
        edges = hist["edges"]
        series[name] = [
            pt for n, c in enumerate(hist["counts"]) for pt in ((edges[n], c / total), (edges[n + 1], c / total))
        ]
    caption = (
        "Event -> list latency: from the event's production to the publication of the first list that includes it. "
        "Dashed markers: each recommender's p50 and p99."
    )
    markers = [
        (q, rows[name][f"latency_{q}_ms"], colours[name])
        for name in histograms
        for q in ("p50", "p99")
        if not math.isnan(rows.get(name, {}).get(f"latency_{q}_ms", math.nan))
    ]
    return line_chart(
        series,
        colours,
        "event -> recommendation latency",
        "latency (ms)",
        "share of events",
        "latency",
        caption,
        markers=markers,
    )


def drilldown(users: Sequence[Mapping[str, Any]]) -> str:
    """For a few users: recent events -> the list each recommender showed -> what they did next."""
    blocks = []
    for user in users:
        upcoming = {e["item_id"] for e in user["next"]}
        lists = "".join(
            f"<div><b>{esc(name)}</b> showed:<ol>"
            + "".join(f'<li class="{"hit" if i["item_id"] in upcoming else ""}">{esc(i["title"])}</li>' for i in shown)
            + "</ol></div>"
            for name, shown in user["shown"].items()
        )
        blocks.append(
            f'<div class="user"><h3>user {esc(user["user_id"])}</h3><div class="flow">'
            f"<div><b>recent events</b>{_events(user['recent'])}</div>{lists}"
            f"<div><b>did next</b>{_events(user['next'])}</div></div></div>"
        )
    return "".join(blocks) or "<p>no users</p>"


def _events(events: Sequence[Mapping[str, Any]]) -> str:
    return (
        "<ol>"
        + "".join(f"<li>{esc(e['title'])} <span class=meta>({esc(e['event_type'])})</span></li>" for e in events)
        + "</ol>"
    )
