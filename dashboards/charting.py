"""The overview's time-series chart: its two requests (the range and the comparison period) and its markup.

The drawing is the aggregator's (:mod:`aggregator.charts`, the nightly report
draws with it too) and so is the pairing of buckets (:mod:`aggregator.series`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup

from aggregator import fmt
from aggregator.annotations import Annotation
from aggregator.charts import Marker, Point, Scale, legend, responsive_chart
from aggregator.metrics import Number
from aggregator.periods import bucket
from aggregator.query import QueryRequest, QueryResult
from aggregator.request import allowed_metrics
from aggregator.series import points
from dashboards.viewstate import COMPARISONS, ViewState

SCALES: dict[str, Scale] = {
    "views_per_visit": "ratio",
    "visit_duration": "seconds",
    "time_on_page": "seconds",
    "conversion_rate": "ratio",
}


def chart_metric(state: ViewState) -> str:
    """The metric drawn: the one chosen, unless this view does not offer it or the query layer refuses it by time."""
    if state.metric not in state.chart_metrics:
        return "visitors"
    dims = (f"time:{state.interval}",)
    allowed = allowed_metrics(dims, state.query_filters())
    return state.metric if all(m in allowed for m in _metrics(state.metric)) else "visitors"


def _metrics(metric: str) -> tuple[str, ...]:
    # Views per visit by time is pageviews / visits of each bucket (the query layer answers it without dimensions).
    if metric == "views_per_visit":
        return ("pageviews", "visits")
    # A bucket's conversion rate is of that bucket's visitors (the group's), not of the whole range's.
    if metric == "conversion_rate":
        return ("group_conversion_rate",)
    return (metric,)


def requests(site: str, state: ViewState) -> list[QueryRequest]:
    """The series over the range and, with a comparison, over the comparison period."""
    metric = chart_metric(state)
    dims = (f"time:{state.interval}",)
    out = [QueryRequest(site, _metrics(metric), (state.start, state.end), dims, state.query_filters())]
    compared = state.comparison_dates()
    if compared is not None:
        out.append(QueryRequest(site, _metrics(metric), compared, dims, state.query_filters()))
    return out


def _vpv(metrics: Sequence[Number]) -> Number:
    return round(metrics[0] / metrics[1], 2) if metrics[1] else 0.0


def series(results: list[QueryResult], state: ViewState, now: dt.datetime, data_from: dt.date | None) -> list[Point]:
    metric = chart_metric(state)
    value = _vpv if metric == "views_per_visit" else (lambda m: m[0])
    previous = results[1] if len(results) > 1 else None
    return points(results[0], previous, value=value, now=now, data_from=data_from)


def markers(notes: list[Annotation], state: ViewState) -> list[Marker]:
    out = []
    for a in notes:
        if state.interval == "hour":
            label = f"{a.day.isoformat()} 00:00:00"
        else:
            label = bucket(f"time:{state.interval}", a.day, state.start)
        out.append(Marker(label, a.text))
    return out


def comparison_label(state: ViewState) -> str | None:
    dates = state.comparison_dates()
    if dates is None:
        return None
    shown = dates[0].isoformat() if dates[0] == dates[1] else f"{dates[0].isoformat()} – {dates[1].isoformat()}"
    return f"{COMPARISONS[state.compare]} ({shown})"


def chart(pts: list[Point], state: ViewState, notes: list[Marker], k: int, chart_id: str = "chart") -> Markup:
    metric = chart_metric(state)
    name = state.chart_metrics[metric]
    comparison = comparison_label(state)
    gaps = f"not shown: fewer than {k} people, or within {k} of a nearby filter" if state.filters else None
    svg = responsive_chart(
        pts,
        title=f"{name} by {state.interval}",
        fmt=lambda v: fmt.metric(metric, v),
        scale=SCALES.get(metric, "count"),
        dimension=f"time:{state.interval}",
        series=name,
        comparison=comparison,
        markers=notes,
        gap_text=f"not shown (fewer than {k} people, or within {k} of a nearby filter)",
        chart_id=chart_id,
    )
    key = legend(
        name,
        comparison,
        partial=any(p.partial for p in pts),
        gaps=gaps if any(p.value is None for p in pts) else None,
        markers=bool(notes),
    )
    return Markup(svg + key)  # noqa: S704 (fixed markup, every value escaped by aggregator.charts)
