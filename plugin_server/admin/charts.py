"""Bar charts drawn on the server as SVG: no script, nothing fetched. Each chart is an image
with a title and a description for screen readers, and every bar has a ``<title>`` with its
value (shown on hover). Colours come from CSS classes (the CSP forbids inline styles)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 28, 40
Number = int | Decimal


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str  # e.g. "series-1"; admin.css colours it
    values: Sequence[Number]


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(chart_id: str, title: str, description: str, categories: Sequence[str],
              series: Sequence[Series], shown: Callable[[Number], str]) -> Markup:
    """Bars per category, one per series side by side; ``shown`` formats a value for people
    (the caller's locale)."""
    peak = max((float(value) for one in series for value in one.values), default=0.0)
    scale = peak if peak > 0 else 1.0
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(categories), 1)
    bar = slot * 0.8 / max(len(series), 1)
    base = TOP + plot_height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<line class="grid-line" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
        f'<text x="{LEFT - 6}" y="{base + 4}" text-anchor="end">{escape(shown(0))}</text>',
    ]
    if peak > 0:  # the scale's top, labelled with the largest value
        parts.append(f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
                     f'{escape(shown(Decimal(str(peak)) if peak % 1 else int(peak)))}</text>')
    if len(series) > 1:
        for number, one in enumerate(series):
            x = LEFT + number * 150
            parts.append(f'<rect class="bar {one.css_class}" x="{x}" y="6" width="10" '
                         f'height="10"/><text x="{x + 14}" y="15">{escape(one.name)}</text>')
    # Label every other category when there are many, so labels never overlap.
    label_every = 1 if len(categories) <= 8 else 2
    for position, category in enumerate(categories):
        left = LEFT + position * slot + slot * 0.1
        for number, one in enumerate(series):
            value = one.values[position]
            height = plot_height * float(value) / scale
            parts.append(
                f'<rect class="bar {one.css_class}" x="{_fmt(left + number * bar)}" '
                f'y="{_fmt(base - height)}" width="{_fmt(max(bar - 1, 1))}" '
                f'height="{_fmt(height)}"><title>{escape(category)} · {escape(one.name)}: '
                f'{escape(shown(value))}</title></rect>')
        if position % label_every == 0:
            parts.append(f'<text x="{_fmt(LEFT + position * slot + slot / 2)}" '
                         f'y="{base + 16}" text-anchor="middle">{escape(category)}</text>')
    parts.append("</svg>")
    # Every piece of text above went through escape().
    return Markup("".join(parts))
