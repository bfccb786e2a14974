"""Time-series charts as inline SVG, drawn on the server (no chart library, no script).

The CSP forbids inline styles, so everything is SVG presentation attributes and
CSS classes from the one stylesheet. Labels are escaped (they are ours, but the
habit is cheap). Each point has a ``<title>`` for a native tooltip, and the page
offers the same numbers as a table for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

Number = int | float

W, H = 800, 240
PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 12, 28


def _nice_max(v: float) -> float:
    """The smallest round top of the y axis (4 steps of a round size) at or above ``v``."""
    if v <= 0:
        return 4.0
    raw = v / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        size = step * magnitude
        if size >= raw and (size >= 1 or v < 4):
            return float(size * 4)
    return float(40 * magnitude)


def line_chart(
    points: Sequence[tuple[str, Number]], *, label: str, fmt: Callable[[Number], str], chart_id: str = "chart"
) -> Markup:
    n = len(points)
    top = _nice_max(max((float(v) for _, v in points), default=0.0))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: Number) -> float:
        return PAD_T + plot_h - plot_h * float(v) / top

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{chart_id}-title" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(label)}</title>',
    ]
    for i in range(5):
        v = top * i / 4
        yy = y(v)
        parts.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>')
    if n:
        coords = [(x(i), y(v)) for i, (_, v) in enumerate(points)]
        line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        base = PAD_T + plot_h
        area = f"{coords[0][0]:.1f},{base:.1f} {line} {coords[-1][0]:.1f},{base:.1f}"
        parts.append(f'<polygon class="area" points="{area}"/>')
        parts.append(f'<polyline class="line" points="{line}"/>')
        step = max(1, (n + 7) // 8)  # at most ~8 x labels
        for i, (lbl, v) in enumerate(points):
            cx, cy = coords[i]
            parts.append(
                f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="3">'
                f"<title>{escape(lbl)}: {escape(fmt(v))}</title></circle>"
            )
            if i % step == 0 or i == n - 1 and n <= 8:
                anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
                parts.append(
                    f'<text class="axis" x="{cx:.1f}" y="{H - 8}" text-anchor="{anchor}">{escape(_short(lbl))}</text>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(label: str) -> str:
    # "2026-11-26 13:00:00" -> "13:00"; "2026-11-26" -> "11-26"
    if len(label) >= 16 and label[10] == " ":
        return label[11:16]
    if len(label) == 10:
        return label[5:]
    return label


def bar(share: float) -> Markup:
    """A row's share of the panel's top value, as an SVG bar (an inline style would break the CSP)."""
    width = max(0.0, min(1.0, share)) * 100
    return Markup(
        '<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" focusable="false">'
        f'<rect width="{width:.2f}" height="10"/></svg>'
    )
