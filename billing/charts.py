"""Geometry of the dashboard's charts, drawn by templates as inline SVG.

Each function turns numbers into shapes with coordinates in a fixed viewBox; the templates
under billing/templates/billing/charts only place them. No JavaScript, no fonts, no
assets from anywhere: the page draws the same offline.

The viewBox is about as wide as a chart is drawn on a 1366 px screen (two side by side
beside the admin's menu), so its 12-unit labels read at about 12 px there. A chart with
nothing to draw (all zero) is not drawn: it says why, in its `empty_text`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

Number = int | float | Decimal
Format = Callable[[float], str]

WIDTH = 480
HEIGHT = 220
# Room for the axis labels on the left and the dates at the bottom.
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 30
EMPTY_TEXT = "Nothing to draw in this range."


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 4, 6 or 8 times a power of ten at or above `value` (1 for nothing).

    Quarters of these are round numbers too, and the axis draws quarters.
    """
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def format_count(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def format_money(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str


@dataclass
class ColumnChart:
    """Stacked columns over days (or any sequence of labelled points), with a y axis."""

    title: str
    legend: list[str]
    empty_text: str = EMPTY_TEXT
    width: int = WIDTH
    height: int = HEIGHT
    rects: list[Rect] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    line: str = ""  # polyline points, for a line chart
    dots: list[Rect] = field(default_factory=list)
    baseline: float = HEIGHT - BOTTOM
    left: int = LEFT
    right: int = WIDTH - RIGHT
    empty: bool = True


def _axis(chart: ColumnChart, top_value: float, fmt: Format) -> float:
    """Draws four gridlines; returns the scale (pixels per unit)."""
    plot_height = chart.height - TOP - BOTTOM
    top = nice_ceiling(top_value)
    for step in range(5):
        value = top * step / 4
        chart.ticks.append(Tick(y=chart.baseline - plot_height * step / 4, label=fmt(value)))
    return plot_height / top


def _x_labels(chart: ColumnChart, names: Sequence[str], slot: float) -> None:
    # At most about six labels, evenly spaced, so dates never overlap.
    every = max(1, math.ceil(len(names) / 6))
    for index, name in enumerate(names):
        if index % every == 0:
            chart.labels.append(Label(x=chart.left + slot * (index + 0.5), y=chart.height - 10, text=name))


def column_chart(
    *,
    title: str,
    names: Sequence[str],
    series: Sequence[Sequence[Number]],
    legend: Sequence[str],
    fmt: Format = format_count,
    empty_text: str = EMPTY_TEXT,
) -> ColumnChart:
    """One stacked column per name; `series[s][i]` is the part of series s in column i."""
    chart = ColumnChart(title=title, legend=list(legend), empty_text=empty_text)
    totals = [sum(float(values[index]) for values in series) for index in range(len(names))]
    chart.empty = not any(totals)
    scale = _axis(chart, max(totals, default=0), fmt)
    slot = (chart.right - chart.left) / max(1, len(names))
    width = max(1.0, slot * 0.7)
    for index, name in enumerate(names):
        bottom = chart.baseline
        for number, values in enumerate(series):
            height = float(values[index]) * scale
            if height <= 0:
                continue
            bottom -= height
            chart.rects.append(
                Rect(
                    x=round(chart.left + slot * index + (slot - width) / 2, 2),
                    y=round(bottom, 2),
                    width=round(width, 2),
                    height=round(height, 2),
                    series=number,
                    title=f"{name}: {legend[number]} {fmt(float(values[index]))}",
                )
            )
    _x_labels(chart, names, slot)
    return chart


def line_chart(
    *,
    title: str,
    names: Sequence[str],
    values: Sequence[Number],
    fmt: Format,
    empty_text: str = EMPTY_TEXT,
) -> ColumnChart:
    """A line through one point per name, with a dot (and its value as a tooltip) at each."""
    chart = ColumnChart(title=title, legend=[], empty_text=empty_text)
    numbers = [float(value) for value in values]
    chart.empty = not any(numbers)
    scale = _axis(chart, max(numbers, default=0), fmt)
    slot = (chart.right - chart.left) / max(1, len(names))
    points = []
    for index, (name, number) in enumerate(zip(names, numbers, strict=True)):
        x = round(chart.left + slot * (index + 0.5), 2)
        y = round(chart.baseline - number * scale, 2)
        points.append(f"{x},{y}")
        chart.dots.append(Rect(x=x, y=y, width=3, height=3, series=0, title=f"{name}: {fmt(number)}"))
    chart.line = " ".join(points)
    _x_labels(chart, names, slot)
    return chart


@dataclass(frozen=True, slots=True)
class HBar:
    y: float
    width: float
    label: str  # shortened to fit
    name: str  # in full, as its tooltip
    value: str
    value_x: float


@dataclass
class BarList:
    """Horizontal bars, one per item, longest first: for rankings (models, users)."""

    title: str
    empty_text: str = EMPTY_TEXT
    width: int = WIDTH
    height: int = 0
    bars: list[HBar] = field(default_factory=list)
    label_width: int = 180
    bar_height: int = 18
    empty: bool = True


# About as many characters of 12-unit text as fit the labels' room.
_LABEL_CHARS = 24


def bar_list(
    *, title: str, items: Sequence[tuple[str, Number]], fmt: Format, empty_text: str = EMPTY_TEXT
) -> BarList:
    chart = BarList(title=title, empty_text=empty_text)
    numbers = [(label, float(value)) for label, value in items]
    chart.empty = not any(value for _, value in numbers)
    longest = max((value for _, value in numbers), default=0) or 1
    room = chart.width - chart.label_width - 70  # and the value after the bar
    row = chart.bar_height + 8
    for index, (label, value) in enumerate(numbers):
        text = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
        width = round(max(1.0, room * value / longest), 2)
        chart.bars.append(
            HBar(
                y=index * row + 4,
                width=width,
                label=text,
                name=label,
                value=fmt(value),
                value_x=round(chart.label_width + width + 6, 2),
            )
        )
    chart.height = max(row, len(numbers) * row + 4)
    return chart
