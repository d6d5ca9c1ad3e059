"""Charts as inline SVG, drawn on the server: the report needs no JavaScript to be read.

Two shapes cover the report: horizontal bars (a value per label, e.g. calls by user) and a
line over days (e.g. calls per day). Every label comes from the audit store, which an
attacker can write to, so every string goes through :func:`html.escape` here; the output is
a complete ``<svg>`` element ready to place in the page. Sizes are in user units with a
``viewBox``, so charts scale with the page and print crisply.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_BAR_H = 18
_GAP = 6
_LABEL_W = 190
_VALUE_W = 90
_WIDTH = 640
_COLOUR = "#3b6ea8"


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _clip(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def bar_chart(title: str, items: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars, one per ``(label, value)``, longest bar = largest value."""
    if not items:
        return ""
    top = max(value for _, value in items) or 1.0
    span = _WIDTH - _LABEL_W - _VALUE_W
    height = len(items) * (_BAR_H + _GAP) + _GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = _GAP + i * (_BAR_H + _GAP)
        width = max(1.0, span * (value / top)) if value > 0 else 0.0
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{y + _BAR_H - 5}" text-anchor="end" '
            f'font-size="12">{escape(_clip(label))}</text>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{width:.1f}" height="{_BAR_H}" '
            f'fill="{_COLOUR}"><title>{escape(label)}: {escape(_fmt(value))}</title></rect>'
            f'<text x="{_LABEL_W + width + 4:.1f}" y="{y + _BAR_H - 5}" '
            f'font-size="12">{escape(_fmt(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, points: Sequence[tuple[str, float]]) -> str:
    """A line with dots over ordered ``(label, value)`` points (days), first and last labelled."""
    if not points:
        return ""
    width, height, pad_l, pad_r, pad_t, pad_b = _WIDTH, 200, 60, 20, 14, 34
    top = max(value for _, value in points) or 1.0
    inner_w = width - pad_l - pad_r
    inner_h = height - pad_t - pad_b
    step = inner_w / max(1, len(points) - 1)
    coords = [
        (pad_l + i * step, pad_t + inner_h * (1 - value / top))
        for i, (_, value) in enumerate(points)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - pad_r}" '
        f'y2="{pad_t + inner_h}" stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + inner_h}" stroke="#999"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" font-size="11">'
        f"{escape(_fmt(top))}</text>",
        f'<text x="{pad_l - 6}" y="{pad_t + inner_h}" text-anchor="end" font-size="11">0</text>',
        f'<polyline points="{path}" fill="none" stroke="{_COLOUR}" stroke-width="2"/>',
    ]
    for (label, value), (x, y) in zip(points, coords, strict=True):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{_COLOUR}">'
            f"<title>{escape(label)}: {escape(_fmt(value))}</title></circle>"
        )
    for index, anchor in ((0, "start"), (len(points) - 1, "end")):
        parts.append(
            f'<text x="{coords[index][0]:.1f}" y="{height - 10}" text-anchor="{anchor}" '
            f'font-size="11">{escape(points[index][0])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
