"""Inline SVG trend charts: lines over runs, and stacked bars, as markup with no script.

Colours come from CSS classes (`s0`, `s1`, `v-<verdict>`), never from `style` attributes,
so a page whose policy allows only its own stylesheet draws them. Each point carries a
`<title>`: the browser shows the run and the value on hover, without JavaScript. Every
label is HTML-escaped: suite, target and run names come from the user's files.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 12, 30  # room for the axis labels
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Series:
    """One line (or one layer of the bars): its name, a value per run (None: no value), its class."""

    name: str
    values: Sequence[float | None]
    css: str


def line_chart(
    *,
    title: str,
    labels: Sequence[str],
    lines: Sequence[Series],
    fmt: Callable[[float], str],
    top: float | None = None,
    marked: Sequence[bool] = (),
) -> str:
    """Lines over the runs (`labels`, oldest first), from 0 to `top` (default: a round
    number above the largest value); points where `marked` is true get a ring."""
    values = [v for line in lines for v in line.values if v is not None]
    high = top if top is not None else nice_top(max(values, default=0.0))
    y = _scale(high)
    parts = [_frame(labels, high, fmt)]
    if not values:
        parts.append(_nothing())
    for line in lines:
        points = [(_x(i, len(labels)), y(v), v, i) for i, v in enumerate(line.values) if v is not None]
        for segment in _segments(line.values, len(labels), y):
            parts.append(f'<polyline class="line {line.css}" points="{segment}"/>')
        for px, py, value, index in points:
            ring = index < len(marked) and marked[index]
            tip = _e(f"{line.name} · {labels[index]}: {fmt(value)}" + (" · output changed" if ring else ""))
            cls = f"pt {line.css}" + (" marked" if ring else "")
            parts.append(
                f'<circle class="{cls}" cx="{px:.1f}" cy="{py:.1f}" r="{5 if ring else 3}">'
                f"<title>{tip}</title></circle>"
            )
    return _svg(title, parts, lines)


def bar_chart(*, title: str, labels: Sequence[str], layers: Sequence[Series]) -> str:
    """Stacked bars, one per run: each layer a share of the run's bar (verdict counts)."""
    totals = [sum(layer.values[i] or 0 for layer in layers) for i in range(len(labels))]
    high = nice_top(max(totals, default=0))
    y = _scale(high)
    step = PLOT_W / max(len(labels), 1)
    width = max(step * 0.7, 1.0)
    parts = [_frame(labels, high, lambda v: f"{v:,.0f}", bars=True)]
    for i, label in enumerate(labels):
        base = 0.0
        left = LEFT + i * step + (step - width) / 2
        for layer in layers:
            count = layer.values[i] or 0
            if not count:
                continue
            top, bottom = y(base + count), y(base)
            tip = _e(f"{layer.name} · {label}: {count:,.0f}")
            parts.append(
                f'<rect class="bar {layer.css}" x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" '
                f'height="{bottom - top:.1f}"><title>{tip}</title></rect>'
            )
            base += count
    return _svg(title, parts, [layer for layer in layers if any(layer.values)])


def _nothing() -> str:
    """Said across an empty chart: all cached (no latency), or no price known (no cost)."""
    return (
        f'<text class="tick none" x="{LEFT + PLOT_W / 2:.1f}" y="{TOP + PLOT_H / 2:.1f}" '
        'text-anchor="middle">no values in these runs</text>'
    )


def nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above `value`: an axis top that reads well."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _svg(title: str, parts: list[str], legend: Sequence[Series]) -> str:
    keys = "".join(f'<span class="lg"><i class="sw {item.css}"></i>{_e(item.name)}</span>' for item in legend)
    body = "".join(parts)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>{body}</svg>'
        f'<div class="legend">{keys}</div>'
    )


def _frame(labels: Sequence[str], high: float, fmt: Callable[[float], str], *, bars: bool = False) -> str:
    """Axes, three horizontal grid lines with their values, and the first, middle and last run."""
    y = _scale(high)
    grid = "".join(
        f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_e(fmt(v))}</text>'
        for v in (0.0, high / 2, high)
    )
    shown = sorted({0, len(labels) // 2, len(labels) - 1}) if labels else []
    ticks = "".join(
        f'<text class="tick" x="{_label_x(i, len(labels), bars=bars):.1f}" y="{HEIGHT - 10}" '
        f'text-anchor="{_anchor(i, len(labels))}">{_e(labels[i])}</text>'
        for i in shown
    )
    return grid + ticks


def _anchor(index: int, count: int) -> str:
    """The first run's label starts at its point, the last one's ends there: none is cut off."""
    if count == 1:
        return "middle"
    return "start" if index == 0 else "end" if index == count - 1 else "middle"


def _label_x(index: int, count: int, *, bars: bool) -> float:
    if not bars or count == 1:
        return _x(index, count)
    step = PLOT_W / count
    return LEFT if index == 0 else WIDTH - RIGHT if index == count - 1 else LEFT + (index + 0.5) * step


def _segments(values: Sequence[float | None], count: int, y: Callable[[float], float]) -> list[str]:
    """The line's runs of consecutive values: a run with no value breaks the line."""
    segments: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            segments.append([])
        else:
            segments[-1].append(f"{_x(i, count):.1f},{y(value):.1f}")
    return [" ".join(points) for points in segments if len(points) > 1]


def _x(index: int, count: int) -> float:
    return LEFT + PLOT_W / 2 if count <= 1 else LEFT + index * PLOT_W / (count - 1)


def _scale(high: float) -> Callable[[float], float]:
    return lambda value: TOP + PLOT_H * (1 - min(value, high) / high)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
