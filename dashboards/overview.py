"""The overview's numbers: KPI cards with their comparison, the chart, the breakdown panels, realtime.

A page is one batch of typed queries (``Querier.run_many``: the day files are
listed and raw days sessionized once for all of them) with explicit dates, so a
CSV export re-runs exactly the query behind its panel. Every number shown is
one the query layer returned: changes are its :func:`aggregator.periods.change`,
``(other)`` is its row, a segment too small to show is its ``suppressed``
reason. The dashboards only choose what to ask and how to say it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup

from aggregator.annotations import Annotation
from aggregator.charts import Point
from aggregator.metrics import Number
from aggregator.query import MAX_LIMIT, QueryRequest, QueryResult
from aggregator.request import OTHER, allowed_metrics, num
from dashboards import charting, fmt
from dashboards.panels import FILTERS, PANELS, Panel, Tab
from dashboards.reports import Reports
from dashboards.viewstate import CHART_METRICS, COMPARISONS, ViewState

KPI_METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page")
METRIC_LABELS: dict[str, str] = {**CHART_METRICS, "events": "Events", "scroll_depth": "Scroll depth"}
SHORT_LABELS = {"pageviews": "Views", "time_on_page": "Time", "scroll_depth": "Scroll", "bounce_rate": "Bounce",
                "visit_duration": "Duration"}  # fmt: skip
LOWER_IS_BETTER = frozenset({"bounce_rate"})
TOP_ROWS = 10
EXPORT_ROWS = MAX_LIMIT
NO_DATA = "no data to compare"
PARTIAL = "comparison only partly covered"


def request(
    site: str,
    metrics: tuple[str, ...],
    state: ViewState,
    dimensions: tuple[str, ...] = (),
    limit: int = MAX_LIMIT,
    *,
    compare: bool = False,
) -> QueryRequest:
    mode = state.comparison if compare else None
    return QueryRequest(
        site_id=site,
        metrics=metrics,
        date_range=(state.start, state.end),
        dimensions=dimensions,
        filters=state.query_filters(),
        limit=limit,
        total_rows=True,
        comparison=mode,
        comparison_range=state.compare_range if mode == "custom" else None,
        match_day_of_week=state.match if mode is not None else False,
    )


@dataclass(frozen=True, slots=True)
class Compared:
    """The comparison period as the query layer ran it, and whether it can carry a change."""

    label: str
    start: dt.date
    end: dt.date
    visits: int
    data_from: dt.date | None  # the site's first day of data

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def covered_days(self) -> int:
        if self.data_from is None or self.data_from > self.end:
            return 0
        return (self.end - max(self.start, self.data_from)).days + 1

    @property
    def status(self) -> str:
        """``ok``; ``empty`` (no visits: no change); ``partial`` (data began inside it: no change either)."""
        if not self.visits:
            return "empty"
        return "partial" if self.covered_days < self.days else "ok"


@dataclass(frozen=True, slots=True)
class Kpi:
    name: str
    label: str
    value: Number
    previous: Number | None
    change: Number | None
    compared: Compared | None = None

    @property
    def display(self) -> str:
        return fmt.metric(self.name, self.value)

    @property
    def previous_display(self) -> str:
        return fmt.metric(self.name, self.previous)

    @property
    def change_display(self) -> str:
        if self.compared is None:
            return ""
        if self.compared.status == "empty":
            return NO_DATA
        if self.compared.status == "partial":
            return PARTIAL
        return fmt.change(self.name, self.change)

    @property
    def tone(self) -> str:
        if self.compared is None or self.compared.status != "ok" or not self.change:
            return "flat"
        return "good" if (self.change > 0) != (self.name in LOWER_IS_BETTER) else "bad"


def kpi_request(site: str, state: ViewState) -> QueryRequest:
    # Metrics the query layer refuses under these filters (views per visit under a page filter) are left out.
    allowed = allowed_metrics((), state.query_filters())
    return request(site, tuple(m for m in KPI_METRICS if m in allowed), state, compare=True)


def compared(result: QueryResult, state: ViewState, data_from: dt.date | None) -> Compared | None:
    if result.comparison_range is None or not result.rows:
        return None
    comp = result.rows[0].comparison
    visits = int(num(comp.metrics[result.request.metrics.index("visits")])) if comp is not None else 0
    start, end = result.comparison_range
    return Compared(COMPARISONS[state.compare], start, end, visits, data_from)


def kpis(result: QueryResult, info: Compared | None) -> list[Kpi]:
    """The range's totals, each with the comparison period's value and the query layer's change."""
    if result.suppressed or not result.rows:
        return []
    row = result.rows[0]
    out = []
    for i, name in enumerate(result.request.metrics):
        comp = row.comparison
        previous = comp.metrics[i] if comp is not None else None
        change = comp.change[i] if comp is not None else None
        out.append(Kpi(name, METRIC_LABELS[name], num(row.metrics[i]), previous, change, info))
    return out


@dataclass(frozen=True, slots=True)
class PanelRow:
    dimensions: tuple[str, ...]
    label: str
    metrics: tuple[Number, ...]
    share: float
    filter_query: str | None  # the URL query that filters by this row; None for (other)


@dataclass(frozen=True, slots=True)
class PanelData:
    panel: Panel
    tab: Tab
    metrics: tuple[str, ...]
    rows: list[PanelRow]
    named_rows: int  # rows with a name (the query layer showed), (other) not counted
    folded_rows: int
    other_suppressed: bool
    suppressed: str | None

    @property
    def metric_labels(self) -> tuple[tuple[str, str], ...]:
        """(short heading, full name) per metric column: a phone has room for "Views", not "Pageviews"."""
        return tuple((SHORT_LABELS.get(m, METRIC_LABELS[m]), METRIC_LABELS[m]) for m in self.metrics)

    @property
    def shown_named(self) -> int:
        return sum(1 for r in self.rows if r.filter_query is not None)

    def cells(self, row: PanelRow) -> list[tuple[str, str, Number]]:
        """(metric, shown text, exact value) per metric column."""
        return [(m, fmt.metric(m, v), v) for m, v in zip(self.metrics, row.metrics, strict=True)]


def tab_metrics(state: ViewState, tab: Tab) -> tuple[str, ...]:
    allowed = allowed_metrics(tab.dimensions, state.query_filters())
    return tuple(m for m in tab.metrics if m in allowed)


def panel_request(site: str, state: ViewState, tab: Tab, limit: int = MAX_LIMIT) -> QueryRequest:
    # Every row is asked for, so that the top ten can be followed by the query layer's exact (other) row.
    return request(site, tab_metrics(state, tab), state, tab.dimensions, limit)


def panel(result: QueryResult, state: ViewState, panel: Panel, tab: Tab, top_rows: int = TOP_ROWS) -> PanelData:
    named = [r for r in result.rows if OTHER not in r.dimensions]
    other = [r for r in result.rows if OTHER in r.dimensions]
    shown = named[:top_rows] + other
    top = max((float(num(r.metrics[0])) for r in shown), default=0.0) or 1.0
    rows = []
    for r in shown:
        dims = tuple(str(d) for d in r.dimensions)
        query = None if OTHER in dims else state.with_filters(tab.click(dims))
        rows.append(
            PanelRow(dims, tab.label_of(dims), tuple(num(m) for m in r.metrics), float(num(r.metrics[0])) / top, query)
        )
    metrics = result.request.metrics
    return PanelData(
        panel, tab, metrics, rows, len(named), result.folded_rows, result.other_suppressed, result.suppressed
    )


def export_rows(
    reports: Reports, site: str, state: ViewState, tab: Tab, now: dt.datetime
) -> tuple[list[str], list[list[object]]]:
    """The panel's full table for CSV: the same query as on screen, every row."""
    result = reports.run(panel_request(site, state, tab, EXPORT_ROWS), now)
    header = [FILTERS[k][1] for k in tab.filter_keys] + list(result.request.metrics)
    return header, [[*r.dimensions, *r.metrics] for r in result.rows]


REALTIME_MINUTES = 5


@dataclass(frozen=True, slots=True)
class Realtime:
    visitors: int | None  # None: fewer than K (k-anonymity hides the number)
    minutes: int
    freshness: str
    k: int


def realtime(reports: Reports, site: str, now: dt.datetime, as_of: dt.datetime | None = None) -> Realtime:
    """Visitors in the last 5 minutes, from data already ingested, and how fresh that data is.

    ``as_of``: the page's totals for today came from a rollup built then (one ingest batch behind).
    """
    cur = reports.current_visitors(site, now, REALTIME_MINUTES)
    last = reports.last_ingest()
    if last is None:
        freshness = "nothing ingested yet"
    else:
        age = max(0, int((now - last).total_seconds()))
        freshness = f"last ingest {fmt.duration(age)} ago" if age >= 1 else "last ingest just now"
        if cur.newest is not None and cur.visitors is not None:  # under K, not even when the last one came
            freshness += f", newest event {cur.newest:%H:%M} UTC"
    if as_of is not None:
        freshness += f"; today's totals as of {as_of:%H:%M:%S} UTC"
    return Realtime(cur.visitors, cur.minutes, freshness, cur.k_anonymity)


@dataclass(frozen=True, slots=True)
class Page:
    kpis: list[Kpi]
    compared: Compared | None
    points: list[Point]
    chart: Markup
    panels: list[PanelData]
    realtime: Realtime
    warnings: list[str]
    suppressed: str | None  # the segment is too small to show: no KPI cards, chart or panels
    annotations: list[Annotation]


def page(
    reports: Reports, site: str, state: ViewState, now: dt.datetime, notes: list[Annotation] | None = None
) -> Page:
    """Every number of the overview, from one batch of queries."""
    tabs = [(p, p.tab(state.tab(p.key))) for p in PANELS]
    series_requests = charting.requests(site, state)
    requests = [kpi_request(site, state), *series_requests]
    requests += [panel_request(site, state, tab) for _, tab in tabs]
    results = reports.run_many(requests, now, page=True)
    k_result, series_results = results[0], results[1 : 1 + len(series_requests)]
    panel_results = results[1 + len(series_requests) :]
    data_from = reports.first_day(site)
    info = compared(k_result, state, data_from)
    panels = [panel(result, state, p, tab) for result, (p, tab) in zip(panel_results, tabs, strict=True)]
    # The aggregator says when part of the range cannot answer (e.g. raw events past retention).
    warnings = list(dict.fromkeys(w for result in results for w in result.warnings))
    as_of = min((r.stale_as_of for r in results if r.stale_as_of is not None), default=None)
    notes = [a for a in notes or [] if state.start <= a.day <= state.end]
    pts = charting.series(series_results, state, now, data_from)
    chart = charting.chart(pts, state, charting.markers(notes, state), reports.k_anonymity)
    return Page(
        kpis(k_result, info),
        info,
        pts,
        chart,
        panels,
        realtime(reports, site, now, as_of),
        warnings,
        k_result.suppressed,
        notes,
    )
