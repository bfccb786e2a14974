"""Time-series charts as SVG, drawn on the server: the one chart code of the dashboards and the nightly report.

No chart library and no script: the dashboards' CSP forbids inline styles and
the report must open offline from a mail attachment, so a chart is plain SVG
with presentation attributes (it looks right without any stylesheet) and CSS
classes either page may restyle. What a reader needs is in the markup itself:

- one column per time bucket (``rect.hit``) with a ``<title>`` (the browser's
  own tooltip on hover, anywhere in the column, not on a 3-px dot) and data
  attributes the dashboards' small same-origin script uses for a richer
  tooltip and for keyboard focus (arrow keys); without the script the page
  still has the native tooltips and the numbers as a table;
- y ticks at round values, whole numbers for counts (never "1.5 visitors");
- a bucket still in progress (today, this hour) shaded, its point hollow and
  the segment into it dashed, so a partial value does not read as a plunge;
- buckets left out because they are under K drawn as gaps with a mark on the
  axis, never as zero (PRIVACY.md rule 5: a filtered bucket is not a total);
- an optional comparison line (dashed, grey) and annotation markers;
- two sizes: a wide one and a compact one with larger relative type and
  fewer labels, shown by the page's media query on a phone.

Every label is escaped: bucket labels are ours, annotation texts are typed by
admins, and the habit is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

from aggregator.metrics import Number

Scale = Literal["count", "seconds", "ratio"]

CURRENT = "#1f5fbf"
PREVIOUS = "#7d8793"
GRID = "#e6e9ee"
INK = "#59636e"
MARKER = "#b25e09"
PARTIAL_BAND = "#eef1f5"


@dataclass(frozen=True, slots=True)
class Point:
    label: str  # the bucket as the query layer labels it ("2026-11-26", "2026-11-26 13:00:00")
    value: Number | None  # None: left out (a filtered bucket under K), drawn as a gap
    previous: Number | None = None  # the comparison period's bucket at the same offset
    previous_label: str = ""
    partial: bool = False  # the bucket is still in progress


@dataclass(frozen=True, slots=True)
class Marker:
    label: str  # the bucket it belongs to
    text: str


@dataclass(frozen=True, slots=True)
class Layout:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    font: int
    max_labels: int
    css: str


WIDE = Layout(800, 260, 58, 14, 16, 30, 12, 8, "chart chart-wide")
COMPACT = Layout(400, 240, 50, 8, 14, 32, 15, 4, "chart chart-compact")

_COUNT_STEPS = (1, 2, 2.5, 5)
_SECOND_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200)


def ticks(peak: float, scale: Scale = "count", most: int = 5) -> list[float]:
    """Round y ticks from 0 up to at least ``peak``, at most ``most`` steps; whole numbers unless a ratio."""
    peak = max(float(peak), 0.0)
    if peak == 0:
        return [0.0, 1.0] if scale == "ratio" else [float(i) for i in range(5)]
    candidates: list[float] = []
    if scale == "seconds":
        candidates = [float(s) for s in _SECOND_STEPS]
    magnitude = 10.0 ** math.floor(math.log10(peak / most))
    for m in (magnitude, magnitude * 10, magnitude * 100):
        candidates += [s * m for s in _COUNT_STEPS]
    for step in sorted(set(candidates)):
        if scale != "ratio" and (step < 1 or step != int(step)):
            continue  # counts and seconds: whole-number ticks only
        if math.ceil(peak / step - 1e-9) <= most:
            n = math.ceil(peak / step - 1e-9)
            return [round(i * step, 6) for i in range(n + 1)]
    step = 10.0 ** math.ceil(math.log10(peak))
    return [0.0, step]


def short_label(label: str, dimension: str) -> str:
    """The x-axis text of a bucket: "13:00", "11-26", "2026-11"."""
    if dimension == "time:hour" and len(label) >= 16:
        return label[11:16]
    if dimension == "time:month" and len(label) >= 7:
        return label[:7]
    if len(label) == 10:
        return label[5:]
    return label


def _segments(coords: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    out: list[list[tuple[float, float]]] = [[]]
    for c in coords:
        if c is None:
            if out[-1]:
                out.append([])
        else:
            out[-1].append(c)
    return [s for s in out if s]


def _poly(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def line_chart(
    points: Sequence[Point],
    *,
    title: str,
    fmt: Callable[[Number], str],
    scale: Scale = "count",
    dimension: str = "time:day",
    series: str = "Visitors",
    comparison: str | None = None,
    markers: Sequence[Marker] = (),
    gap_text: str = "not shown",
    chart_id: str = "chart",
    layout: Layout = WIDE,
) -> str:
    """One chart as an SVG element (a string of fixed markup and escaped text)."""
    n = len(points)
    L = layout
    plot_w, plot_h = L.width - L.left - L.right, L.height - L.top - L.bottom
    values = [float(p.value) for p in points if p.value is not None]
    values += [float(p.previous) for p in points if p.previous is not None and comparison]
    axis = ticks(max(values, default=0.0), scale)
    top = axis[-1] or 1.0
    col = plot_w / max(n, 1)
    base = L.top + plot_h

    def x(i: int) -> float:
        return L.left + col * (i + 0.5)

    def y(v: Number) -> float:
        return L.top + plot_h - plot_h * float(v) / top

    highest = max(((p.value, p.label) for p in points if p.value is not None), default=None)
    desc = f"{n} buckets"
    if points:
        desc = f"From {points[0].label} to {points[-1].label}"
        if highest is not None:
            desc += f"; highest: {fmt(highest[0])} ({highest[1]})"
    out = [
        f'<svg class="{L.css}" viewBox="0 0 {L.width} {L.height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" data-chart="{escape(chart_id)}">',
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]
    for i, p in enumerate(points):  # buckets still in progress: a shaded column behind everything
        if p.partial:
            out.append(
                f'<rect class="partialband" x="{L.left + col * i:.1f}" y="{L.top}" width="{col:.1f}" '
                f'height="{plot_h}" fill="{PARTIAL_BAND}"/>'
            )
    for t in axis:
        yy = y(t)
        out.append(f'<line class="grid" x1="{L.left}" x2="{L.width - L.right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="{GRID}" stroke-width="1"/>')  # fmt: skip
        out.append(
            f'<text class="axis" x="{L.left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="{L.font}" '
            f'fill="{INK}">{escape(fmt(t))}</text>'
        )
    notes: dict[str, list[str]] = {}
    for m in markers:
        notes.setdefault(m.label, []).append(m.text)
    index = {p.label: i for i, p in enumerate(points)}
    for label, texts in notes.items():
        if label not in index:
            continue
        mx = x(index[label])
        out.append(
            f'<g class="marker"><line x1="{mx:.1f}" x2="{mx:.1f}" y1="{L.top}" y2="{base}" stroke="{MARKER}" '
            f'stroke-width="1.5" stroke-dasharray="2 3"/><path d="M{mx - 5:.1f},{L.top - 8} h10 l-5,7 z" '
            f'fill="{MARKER}"/><title>{escape(label)}: {escape("; ".join(texts))}</title></g>'
        )
    if comparison:
        prev = [(x(i), y(p.previous)) if p.previous is not None else None for i, p in enumerate(points)]
        for seg in _segments(prev):
            out.append(
                f'<polyline class="prevline" points="{_poly(seg)}" fill="none" stroke="{PREVIOUS}" '
                'stroke-width="2" stroke-dasharray="5 4" stroke-linejoin="round"/>'
            )
    coords = [(x(i), y(p.value)) if p.value is not None else None for i, p in enumerate(points)]
    done = [c if c is not None and not points[i].partial else None for i, c in enumerate(coords)]
    for seg in _segments(done):
        out.append(
            f'<polyline class="line" points="{_poly(seg)}" fill="none" stroke="{CURRENT}" stroke-width="2.5" '
            'stroke-linejoin="round"/>'
        )
    for i, p in enumerate(points):
        c = coords[i]
        if p.partial and c is not None:
            before = coords[i - 1] if i > 0 else None
            if before is not None:
                out.append(
                    f'<polyline class="line partial" points="{_poly([before, c])}" fill="none" stroke="{CURRENT}" '
                    'stroke-width="2.5" stroke-dasharray="4 4"/>'
                )
            out.append(f'<circle class="dot partial" cx="{c[0]:.1f}" cy="{c[1]:.1f}" r="4" fill="#fff" '
                       f'stroke="{CURRENT}" stroke-width="2"/>')  # fmt: skip
        elif c is not None and n <= 40:
            out.append(f'<circle class="dot" cx="{c[0]:.1f}" cy="{c[1]:.1f}" r="2.5" fill="{CURRENT}"/>')
        elif c is None:
            out.append(
                f'<line class="gap" x1="{x(i) - col * 0.3:.1f}" x2="{x(i) + col * 0.3:.1f}" y1="{base - 1:.1f}" '
                f'y2="{base - 1:.1f}" stroke="{PREVIOUS}" stroke-width="3"/>'
            )
    step = max(1, math.ceil(n / L.max_labels))
    for i, p in enumerate(points):
        if i % step:
            continue
        anchor = "start" if i == 0 and n > 2 else "middle"
        xx = L.left if anchor == "start" else x(i)
        out.append(
            f'<text class="axis xlabel" x="{xx:.1f}" y="{L.height - 9}" text-anchor="{anchor}" font-size="{L.font}" '
            f'fill="{INK}">{escape(short_label(p.label, dimension))}</text>'
        )
    for i, p in enumerate(points):  # last, so the columns are on top and catch the pointer
        shown = gap_text if p.value is None else fmt(p.value) + (" so far" if p.partial else "")
        tip = f"{p.label}: {series} {shown}"
        prev_text = ""
        if comparison:
            prev_text = "no data" if p.previous is None else fmt(p.previous)
            tip += f" · {comparison} ({p.previous_label or '–'}): {prev_text}"
        note = "; ".join(notes.get(p.label, []))
        if note:
            tip += f" · Note: {note}"
        out.append(
            f'<rect class="hit" x="{L.left + col * i:.1f}" y="{L.top}" width="{col:.1f}" height="{plot_h}" '
            f'fill="#000" fill-opacity="0" data-i="{i}" data-x="{x(i):.1f}" '
            f'data-y="{(coords[i] or (0.0, base))[1]:.1f}" data-label="{escape(p.label)}" '
            f'data-value="{escape(shown)}" data-prev-label="{escape(p.previous_label)}" '
            f'data-prev="{escape(prev_text)}" data-note="{escape(note)}"><title>{escape(tip)}</title></rect>'
        )
    out.append("</svg>")
    return "".join(out)


def responsive_chart(points: Sequence[Point], **kw: object) -> str:
    """The wide chart and the compact one (for phones); the page's CSS shows one of them."""
    chart_id = str(kw.pop("chart_id", "chart"))
    wide = line_chart(points, chart_id=chart_id, layout=WIDE, **kw)  # type: ignore[arg-type]
    compact = line_chart(points, chart_id=f"{chart_id}-c", layout=COMPACT, **kw)  # type: ignore[arg-type]
    return wide + compact


def legend(series: str, comparison: str | None, *, partial: bool, gaps: str | None, markers: bool) -> str:
    """What the lines, shading and marks mean, as a short HTML list with SVG swatches."""

    def swatch(body: str) -> str:
        return f'<svg class="swatch" viewBox="0 0 24 10" width="24" height="10" aria-hidden="true">{body}</svg>'

    items = [swatch(f'<line x1="0" x2="24" y1="5" y2="5" stroke="{CURRENT}" stroke-width="3"/>') + escape(series)]
    if comparison:
        body = f'<line x1="0" x2="24" y1="5" y2="5" stroke="{PREVIOUS}" stroke-width="2" stroke-dasharray="5 4"/>'
        items.append(swatch(body) + escape(comparison))
    if partial:
        items.append(swatch(f'<rect width="24" height="10" fill="{PARTIAL_BAND}"/>') + "still in progress (so far)")
    if gaps:
        items.append(
            swatch(f'<line x1="4" x2="20" y1="8" y2="8" stroke="{PREVIOUS}" stroke-width="3"/>') + escape(gaps)
        )
    if markers:
        items.append(swatch(f'<path d="M7,0 h10 l-5,7 z" fill="{MARKER}"/>') + "annotation")
    return '<ul class="legend">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


#: The CSS both pages include: which of the two sizes is shown, and hover highlight.
CSS = (
    "svg.chart{width:100%;height:auto;display:block}"
    "svg.chart-compact{display:none}"
    "@media (max-width:640px){svg.chart-wide{display:none}svg.chart-compact{display:block}}"
    "svg.chart .hit:hover,svg.chart .hit.active{fill-opacity:.07}"
    ".legend{list-style:none;padding:0;margin:.3rem 0;display:flex;flex-wrap:wrap;gap:.2rem 1rem;font-size:.85em}"
    ".legend li{display:flex;align-items:center;gap:.35rem}"
)
