"""Small server-rendered SVG charts: bars and lines, accessible, with no script or inline style.

The pages run under the site's Content Security Policy, which allows no
inline script and no style attribute; the charts are plain SVG elements
with presentation attributes and CSS classes (static/dashboard/dashboard.css
colours them, in the admin's light and dark themes). Every chart is an
image to assistive technology (role="img", a <title> and a <desc>), and each
bar or point has a <title> of its own as a tooltip; the page shows the same
numbers in a table under it.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 280
# Room for the y axis's ticks and label, the x axis's labels and label.
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56
# More x labels than this overlap: the others are left out (the table has them all).
MAX_X_LABELS = 12
MAX_SERIES = 6


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def plain_number(value: float) -> str:
    """1234 → "1,234"; 0.5 → "0.5": the default tick and tooltip format."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks (1, 2 or 5 times a power of ten apart) covering low..high and zero."""
    low, high = min(low, 0.0), max(high, 0.0)
    if low == high:
        high = low + 1
    raw_step = (high - low) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    # Counted in whole steps (with a hair of tolerance for floating point),
    # so the last tick is never short of `high`, and three steps of 0.1 print as 0.3.
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


class _Frame:
    """The plot area and its scales."""

    def __init__(self, labels: Sequence[str], series: Sequence[Series]) -> None:
        if not labels:
            raise ValueError("A chart needs at least one label.")
        if not series or len(series) > MAX_SERIES:
            raise ValueError(f"A chart takes 1 to {MAX_SERIES} series.")
        for one in series:
            if len(one.values) != len(labels):
                raise ValueError(
                    f"Series {one.name!r} has {len(one.values)} values for {len(labels)} labels."
                )
        values = [value for one in series for value in one.values]
        self.ticks = nice_ticks(min(values), max(values))
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.labels = labels
        self.plot_width = WIDTH - LEFT - RIGHT
        self.plot_height = HEIGHT - TOP - BOTTOM
        self.band = self.plot_width / len(labels)

    def y(self, value: float) -> float:
        return TOP + self.plot_height * (self.high - value) / (self.high - self.low)

    def x_centre(self, index: int) -> float:
        return LEFT + self.band * (index + 0.5)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _axes(frame: _Frame, x_label: str, y_label: str, fmt: Callable[[float], str]) -> list[str]:
    parts = ['<g class="chart-axes">']
    for tick in frame.ticks:
        y = _n(frame.y(tick))
        grid = "chart-grid chart-zero" if tick == 0 else "chart-grid"
        parts.append(
            f'<line class="{grid}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
            f'<text class="chart-tick" x="{LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(fmt(tick))}</text>'
        )
    every = math.ceil(len(frame.labels) / MAX_X_LABELS)
    baseline = TOP + frame.plot_height
    for index, label in enumerate(frame.labels):
        if index % every:
            continue
        parts.append(
            f'<text class="chart-tick" x="{_n(frame.x_centre(index))}" y="{baseline + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    middle_x, middle_y = _n(LEFT + frame.plot_width / 2), _n(TOP + frame.plot_height / 2)
    parts.append(
        f'<text class="chart-axis-label" x="{middle_x}" y="{HEIGHT - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="chart-axis-label" x="14" y="{middle_y}" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle_y})">{escape(y_label)}</text>'
        "</g>"
    )
    return parts


def _tooltip(label: str, series: str, value: str) -> str:
    return f"<title>{escape(label)}, {escape(series)}: {escape(value)}</title>"


def _legend(series: Sequence[Series]) -> list[str]:
    if len(series) < 2:
        return []
    parts = ['<g class="chart-legend">']
    x = LEFT
    for index, one in enumerate(series):
        parts.append(
            f'<rect class="series-{index}" x="{x}" y="2" width="10" height="10"/>'
            f'<text class="chart-tick" x="{x + 14}" y="11">{escape(one.name)}</text>'
        )
        x += 24 + 7 * len(one.name)
    parts.append("</g>")
    return parts


def _svg(chart_id: str, title: str, description: str, body: list[str]) -> SafeString:
    # Every piece of text in `body` was escaped where it was put in.
    chart_id = escape(chart_id)
    head = (
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 - escaped above


def bar_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: Callable[[float], str] = plain_number,
) -> SafeString:
    """Bars for each label, side by side when there are several series; negatives go down."""
    frame = _Frame(labels, series)
    gap = frame.band * 0.2
    bar_width = (frame.band - gap) / len(series)
    zero = frame.y(0)
    body = _axes(frame, x_label, y_label, fmt)
    body.extend(_legend(series))
    for number, one in enumerate(series):
        body.append(f'<g class="series-{number}">')
        for index, value in enumerate(one.values):
            x = LEFT + frame.band * index + gap / 2 + bar_width * number
            top, bottom = sorted((frame.y(value), zero))
            tooltip = _tooltip(labels[index], one.name, fmt(value))
            body.append(
                f'<rect x="{_n(x)}" y="{_n(top)}" width="{_n(bar_width)}" '
                f'height="{_n(bottom - top)}">{tooltip}</rect>'
            )
        body.append("</g>")
    return _svg(chart_id, title, description, body)


def line_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: Callable[[float], str] = plain_number,
) -> SafeString:
    """A line per series through each label's value, with a marked point for each."""
    frame = _Frame(labels, series)
    body = _axes(frame, x_label, y_label, fmt)
    body.extend(_legend(series))
    for number, one in enumerate(series):
        points = [(frame.x_centre(index), frame.y(value)) for index, value in enumerate(one.values)]
        path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        body.append(f'<g class="series-{number}"><polyline class="chart-line" points="{path}"/>')
        for index, (x, y) in enumerate(points):
            tooltip = _tooltip(labels[index], one.name, fmt(one.values[index]))
            body.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3">{tooltip}</circle>')
        body.append("</g>")
    return _svg(chart_id, title, description, body)
