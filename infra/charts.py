"""A small SVG chart kit for self-contained HTML: axes, polylines, legends, line charts.

Pixels are fixed (`CHART_W` x `CHART_H`, `MARGIN` around the plot area, a legend column of
`LEGEND_W` to its right); `Axes` maps data coordinates onto them, y growing upwards, each
range widened to round tick values (`nice_ticks`).

>>> axes = Axes((0.0, 10.0), (0.0, 1.0))
>>> axes.px(0.0) == MARGIN["left"], axes.py(0.0) == CHART_H - MARGIN["bottom"]
(True, True)
>>> esc("<b>")
'&lt;b&gt;'
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

CHART_W, CHART_H = 560, 300
MARGIN = {"left": 56, "right": 16, "top": 28, "bottom": 44}
# About this many intervals per axis; `nice_ticks` picks a step of 1, 2 or 5 x 10^k near it.
TICKS = 5
NICE_STEPS = (1.0, 2.0, 5.0, 10.0)
# Legend column right of the plot area (never over a line): width and line height (px).
LEGEND_W, LEGEND_LINE = 180, 14
MARKER_COLOUR = "#888"
# Marker labels step down this many lines, then start again at the top (the plot is ~16 lines tall).
MARKER_ROWS = 10


def nice_ticks(lo: float, hi: float, target: int = TICKS) -> list[float]:
    """Round tick values covering [lo, hi]: a step of 1, 2 or 5 x 10^k giving about ``target``
    intervals, the first tick at or below ``lo`` and the last at or above ``hi``.

    >>> nice_ticks(0.0, 0.0416)
    [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
    >>> nice_ticks(0.0, 337.2)
    [0.0, 100.0, 200.0, 300.0, 400.0]
    >>> nice_ticks(1.0, 1682.0)
    [0.0, 500.0, 1000.0, 1500.0, 2000.0]
    """
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in NICE_STEPS if m * magnitude >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step)))
    return [round(n * step, decimals) for n in range(first, last + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick's text with as many decimals as the step needs (0.05 -> "0.05", 200.0 -> "200").

    >>> [tick_label(t, [0.0, 0.2, 0.4]) for t in (0.0, 0.2, 0.4)]
    ['0.0', '0.2', '0.4']
    >>> tick_label(1500.0, [0.0, 500.0])
    '1,500'
    """
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"


def esc(value: object) -> str:
    """Text as HTML (and SVG) content."""
    return html.escape(str(value))


class Axes:
    """Maps data coordinates to the chart's pixels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x_ticks, self.y_ticks = nice_ticks(*x_range), nice_ticks(*y_range)
        self.x0, self.x1 = self.x_ticks[0], self.x_ticks[-1]
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]

    def px(self, x: float) -> float:
        return MARGIN["left"] + (x - self.x0) / (self.x1 - self.x0) * (CHART_W - MARGIN["left"] - MARGIN["right"])

    def py(self, y: float) -> float:
        return (
            CHART_H
            - MARGIN["bottom"]
            - (y - self.y0) / (self.y1 - self.y0) * (CHART_H - MARGIN["top"] - MARGIN["bottom"])
        )

    def frame(self, title: str, x_label: str, y_label: str) -> str:
        left, bottom = MARGIN["left"], CHART_H - MARGIN["bottom"]
        parts = [
            f'<text x="{CHART_W / 2}" y="16" text-anchor="middle" font-weight="bold">{esc(title)}</text>',
            f'<line x1="{left}" y1="{bottom}" x2="{CHART_W - MARGIN["right"]}" y2="{bottom}" stroke="#333"/>',
            f'<line x1="{left}" y1="{MARGIN["top"]}" x2="{left}" y2="{bottom}" stroke="#333"/>',
            f'<text x="{CHART_W / 2}" y="{CHART_H - 6}" text-anchor="middle">{esc(x_label)}</text>',
            f'<text x="12" y="{CHART_H / 2}" text-anchor="middle" transform="rotate(-90 12 {CHART_H / 2})">{esc(y_label)}</text>',
        ]
        for x in self.x_ticks:
            label = tick_label(x, self.x_ticks)
            parts.append(
                f'<text class="tick" x="{self.px(x):.1f}" y="{bottom + 14}" text-anchor="middle">{label}</text>'
            )
        for y in self.y_ticks:
            label = tick_label(y, self.y_ticks)
            parts.append(f'<text class="tick" x="{left - 4}" y="{self.py(y) + 4:.1f}" text-anchor="end">{label}</text>')
            parts.append(
                f'<line x1="{left}" y1="{self.py(y):.1f}" x2="{CHART_W - MARGIN["right"]}" y2="{self.py(y):.1f}" stroke="#eee"/>'
            )
        return "".join(parts)

    def marker(self, x: float, label: str, colour: str = MARKER_COLOUR, row: int = 0) -> str:
        """A dashed vertical line at data ``x`` across the plot, labelled near its top
        (``row`` lines down, so labels of close markers do not overprint)."""
        px = self.px(x)
        return (
            f'<line class="marker" x1="{px:.1f}" y1="{MARGIN["top"]}" x2="{px:.1f}" y2="{CHART_H - MARGIN["bottom"]}" '
            f'stroke="{colour}" stroke-dasharray="2,2"/>'
            f'<text class="marker-label" x="{px + 3:.1f}" y="{MARGIN["top"] + 10 + LEGEND_LINE * (row % MARKER_ROWS)}" '
            f'font-size="10" fill="{colour}">'
            f"{esc(label)}</text>"
        )

    def polyline(self, points: Sequence[tuple[float, float]], colour: str, dashed: bool = False) -> str:
        coords = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        return f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{coords}"/>'


def legend(colours: Mapping[str, str]) -> str:
    """One swatch and name per series, in the column right of the plot area."""
    x, top = CHART_W + 4, MARGIN["top"] + 4
    return "".join(
        f'<rect x="{x}" y="{top + LEGEND_LINE * n}" width="10" height="10" fill="{c}"/>'
        f'<text x="{x + 14}" y="{top + 9 + LEGEND_LINE * n}">{esc(name)}</text>'
        for n, (name, c) in enumerate(colours.items())
    )


def svg(content: str, caption: str, kind: str, legend_column: bool = False) -> str:
    """The chart as a figure; ``legend_column`` widens it by `LEGEND_W` for a `legend`."""
    width = CHART_W + (LEGEND_W if legend_column else 0)
    return (
        f'<figure><svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{CHART_H}" '
        f'viewBox="0 0 {width} {CHART_H}">{content}</svg><figcaption>{esc(caption)}</figcaption></figure>'
    )


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    colours: Mapping[str, str],
    title: str,
    x_label: str,
    y_label: str,
    kind: str,
    caption: str,
    dashed: Sequence[str] = (),
    markers: Sequence[tuple[str, float, str]] = (),
) -> str:
    """Lines over shared axes (y from 0), their legend beside the plot and labelled vertical
    ``markers`` (label, x, colour)."""
    points = [p for s in series.values() for p in s if not math.isnan(p[1])]
    if not points:
        return f"<p>{esc(title)}: no data</p>"
    # No headroom factor: `nice_ticks` already rounds the top up to the next tick.
    axes = Axes((min(x for x, _ in points), max(x for x, _ in points)), (0.0, max(y for _, y in points) or 1.0))
    lines = "".join(
        axes.polyline([p for p in pts if not math.isnan(p[1])], colours[name], name in dashed)
        for name, pts in series.items()
    )
    marks = "".join(axes.marker(x, label, colour, row) for row, (label, x, colour) in enumerate(markers))
    return svg(
        axes.frame(title, x_label, y_label) + lines + marks + legend({n: colours[n] for n in series}),
        caption,
        kind,
        legend_column=True,
    )
