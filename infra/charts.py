"""A small SVG chart kit for self-contained HTML: axes, polylines, legends, line charts.

Pixels are fixed (`CHART_W` x `CHART_H`, `MARGIN` around the plot area); `Axes` maps data
coordinates onto them, y growing upwards.

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
TICKS = 5


def esc(value: object) -> str:
    """Text as HTML (and SVG) content."""
    return html.escape(str(value))


class Axes:
    """Maps data coordinates to the chart's pixels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range if y_range[1] > y_range[0] else (y_range[0], y_range[0] + 1.0)
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0

    def px(self, x: float) -> float:
        return MARGIN["left"] + (x - self.x0) / (self.x1 - self.x0) * (CHART_W - MARGIN["left"] - MARGIN["right"])

    def py(self, y: float) -> float:
        return (
            CHART_H
            - MARGIN["bottom"]
            - (y - self.y0) / (self.y1 - self.y0) * (CHART_H - MARGIN["top"] - MARGIN["bottom"])
        )

    def frame(self, title: str, x_label: str, y_label: str, x_fmt: str = "{:g}", y_fmt: str = "{:.3g}") -> str:
        left, bottom = MARGIN["left"], CHART_H - MARGIN["bottom"]
        parts = [
            f'<text x="{CHART_W / 2}" y="16" text-anchor="middle" font-weight="bold">{esc(title)}</text>',
            f'<line x1="{left}" y1="{bottom}" x2="{CHART_W - MARGIN["right"]}" y2="{bottom}" stroke="#333"/>',
            f'<line x1="{left}" y1="{MARGIN["top"]}" x2="{left}" y2="{bottom}" stroke="#333"/>',
            f'<text x="{CHART_W / 2}" y="{CHART_H - 6}" text-anchor="middle">{esc(x_label)}</text>',
            f'<text x="12" y="{CHART_H / 2}" text-anchor="middle" transform="rotate(-90 12 {CHART_H / 2})">{esc(y_label)}</text>',
        ]
        for t in range(TICKS + 1):
            x = self.x0 + (self.x1 - self.x0) * t / TICKS
            y = self.y0 + (self.y1 - self.y0) * t / TICKS
            parts.append(
                f'<text x="{self.px(x):.1f}" y="{bottom + 14}" text-anchor="middle">{esc(x_fmt.format(x))}</text>'
            )
            parts.append(
                f'<text x="{left - 4}" y="{self.py(y) + 4:.1f}" text-anchor="end">{esc(y_fmt.format(y))}</text>'
            )
            parts.append(
                f'<line x1="{left}" y1="{self.py(y):.1f}" x2="{CHART_W - MARGIN["right"]}" y2="{self.py(y):.1f}" stroke="#eee"/>'
            )
        return "".join(parts)

    def polyline(self, points: Sequence[tuple[float, float]], colour: str, dashed: bool = False) -> str:
        coords = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        return f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{coords}"/>'


# Legend box width and line height (px); where a legend goes depends on the chart's
# empty corner: curves that rise early leave the bottom right free, histograms the top right.
LEGEND_W, LEGEND_LINE = 170, 14


def legend(colours: Mapping[str, str], corner: str = "top-left") -> str:
    x = MARGIN["left"] + 8 if corner.endswith("left") else CHART_W - MARGIN["right"] - LEGEND_W
    top = MARGIN["top"] + 4
    if corner.startswith("bottom"):
        top = CHART_H - MARGIN["bottom"] - 8 - LEGEND_LINE * len(colours)
    return "".join(
        f'<rect x="{x}" y="{top + LEGEND_LINE * n}" width="10" height="10" fill="{c}"/>'
        f'<text x="{x + 14}" y="{top + 9 + LEGEND_LINE * n}">{esc(name)}</text>'
        for n, (name, c) in enumerate(colours.items())
    )


def svg(content: str, caption: str, kind: str) -> str:
    return (
        f'<figure><svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}">{content}</svg><figcaption>{esc(caption)}</figcaption></figure>'
    )


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    colours: Mapping[str, str],
    title: str,
    x_label: str,
    y_label: str,
    kind: str,
    caption: str,
    x_fmt: str = "{:g}",
    dashed: Sequence[str] = (),
    corner: str = "top-left",
) -> str:
    points = [p for s in series.values() for p in s if not math.isnan(p[1])]
    if not points:
        return f"<p>{esc(title)}: no data</p>"
    axes = Axes((min(x for x, _ in points), max(x for x, _ in points)), (0.0, max(y for _, y in points) * 1.05 or 1.0))
    lines = "".join(
        axes.polyline([p for p in pts if not math.isnan(p[1])], colours[name], name in dashed)
        for name, pts in series.items()
    )
    return svg(
        axes.frame(title, x_label, y_label, x_fmt) + lines + legend({n: colours[n] for n in series}, corner),
        caption,
        kind,
    )
