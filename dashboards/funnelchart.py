"""A funnel as SVG bars, drawn on the server like the other charts (no script, no inline style: the CSP).

One column per step: the visitors who reached it as a solid bar, those of the
step before who did not as a pale bar on top of it (the drop-off), both to the
scale of the first step. A step the query layer does not show (under K, or
after a step that is not shown) is an empty dashed column saying "fewer than
K": never a bar of 0, which would read as "nobody". Every column has a
``<title>`` (the browser's own tooltip); the page puts the same numbers, and
more, in a table under the chart, which is what a screen reader reads (the
SVG is one labelled image).
"""

from __future__ import annotations

from markupsafe import Markup, escape

from aggregator import fmt
from aggregator.funnels import FunnelStep

WIDTH, HEIGHT = 800, 280
TOP, BOTTOM, SIDE = 34, 46, 8
STEP_FILL = "#1f5fbf"
DROP_FILL = "#c9d8f0"
INK = "#59636e"
NAME_CHARS = 22  # a step's name under its column, shortened; the whole name is in the title and the table


def _short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def describe(step: FunnelStep, index: int, k: int) -> str:
    """One step in words (the column's tooltip)."""
    if step.visitors is None:
        return f"Step {index}: {step.name}: fewer than {k} visitors (not shown)"
    text = f"Step {index}: {step.name}: {step.visitors:,} visitors"
    if index > 1:
        text += f", {fmt.percent(step.conversion_rate)} of those entering, {fmt.percent(step.conversion_rate_step)} of "
        text += f"step {index - 1}, {step.dropoff or 0:,} dropped out"
        if step.median_seconds is not None:
            text += f", median {fmt.duration(step.median_seconds)} after step {index - 1}"
    return text


def funnel_svg(steps: list[FunnelStep], k: int, title: str) -> Markup:
    n = max(len(steps), 1)
    column = (WIDTH - 2 * SIDE) / n
    bar = column * 0.62
    plot = HEIGHT - TOP - BOTTOM
    first = next((s.visitors for s in steps if s.visitors is not None), None) or 0
    parts = [
        f'<svg class="funnel" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="funnel-title funnel-desc" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="funnel-title">{escape(title)}</title>',
        f'<desc id="funnel-desc">{escape("; ".join(describe(s, i + 1, k) for i, s in enumerate(steps)))}</desc>',
        f'<line x1="{SIDE}" x2="{WIDTH - SIDE}" y1="{TOP + plot}" y2="{TOP + plot}" stroke="{INK}" stroke-width="1"/>',
    ]
    previous: int | None = None
    for i, s in enumerate(steps):
        x = SIDE + i * column + (column - bar) / 2
        cx = SIDE + i * column + column / 2
        tip = escape(describe(s, i + 1, k))
        parts.append(f'<g class="fstep{" hidden" if s.visitors is None else ""}"><title>{tip}</title>')
        if s.visitors is None:
            parts.append(
                f'<rect class="fhidden" x="{x:.1f}" y="{TOP}" width="{bar:.1f}" height="{plot}" fill="none" '
                f'stroke="{INK}" stroke-dasharray="4 4"/>'
                f'<text x="{cx:.1f}" y="{TOP + plot / 2:.1f}" text-anchor="middle" font-size="13" fill="{INK}">'
                f"fewer than {k}</text>"
            )
        else:
            h = plot * s.visitors / first if first else 0.0
            d = plot * (previous - s.visitors) / first if previous is not None and first else 0.0
            if d > 0:
                parts.append(
                    f'<rect class="fdrop" x="{x:.1f}" y="{TOP + plot - h - d:.1f}" width="{bar:.1f}" '
                    f'height="{d:.1f}" fill="{DROP_FILL}"/>'
                )
            parts.append(
                f'<rect class="fbar" x="{x:.1f}" y="{TOP + plot - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{STEP_FILL}"/>'
                f'<text x="{cx:.1f}" y="{TOP + plot - h - max(d, 0.0) - 6:.1f}" text-anchor="middle" font-size="14" '
                f'font-weight="600" fill="#1d2433">{s.visitors:,}</text>'
            )
            previous = s.visitors
        label = escape(_short(s.name, NAME_CHARS))
        parts.append(
            f'<text x="{cx:.1f}" y="{TOP + plot + 18}" text-anchor="middle" font-size="12" fill="{INK}">'
            f"{i + 1}. {label}</text>"
        )
        if s.visitors is not None and i > 0:
            parts.append(
                f'<text x="{cx:.1f}" y="{TOP + plot + 36}" text-anchor="middle" font-size="12" fill="{INK}">'
                f"{escape(fmt.percent(s.conversion_rate))}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (fixed markup; every name and number above is escaped)
