"""The overview's numbers: KPI cards with change, the time series, the breakdown panels, realtime.

A page is one batch of typed queries (``Querier.run_many``: the day files are
listed and raw days sessionized once for all of them) with explicit dates, so
the previous period is computed like the current one and a CSV export re-runs
exactly the query behind its panel, only with more rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregator.query import MAX_LIMIT, QueryRequest, QueryResult
from aggregator.request import ComparisonMode, allowed_metrics
from dashboards import fmt
from dashboards.panels import FILTERS, PANELS, Panel, Tab
from dashboards.reports import Reports
from dashboards.viewstate import CHART_METRICS, ViewState

Number = int | float
KPI_METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page")
METRIC_LABELS: dict[str, str] = {**CHART_METRICS, "events": "Events", "scroll_depth": "Scroll depth"}
LOWER_IS_BETTER = frozenset({"bounce_rate"})
OTHER = "(other)"
TOP_ROWS = 10
EXPORT_ROWS = MAX_LIMIT


def request(
    site: str,
    metrics: tuple[str, ...],
    state: ViewState,
    dimensions: tuple[str, ...] = (),
    limit: int = MAX_LIMIT,
    comparison: ComparisonMode | None = None,
) -> QueryRequest:
    return QueryRequest(
        site_id=site,
        metrics=metrics,
        date_range=(state.start, state.end),
        dimensions=dimensions,
        filters=state.query_filters(),
        limit=limit,
        total_rows=True,
        comparison=comparison,
    )


@dataclass(frozen=True, slots=True)
class Kpi:
    name: str
    label: str
    value: Number
    previous: Number
    change: Number | None

    @property
    def display(self) -> str:
        return fmt.metric(self.name, self.value)

    @property
    def previous_display(self) -> str:
        return fmt.metric(self.name, self.previous)

    @property
    def change_display(self) -> str:
        return fmt.change(self.name, self.change)

    @property
    def tone(self) -> str:
        if self.change is None or self.change == 0:
            return "flat"
        up = self.change > 0
        return "good" if up != (self.name in LOWER_IS_BETTER) else "bad"


def kpi_request(site: str, state: ViewState) -> QueryRequest:
    # Views per visit means nothing under a page filter (Plausible refuses it too): that card is left out.
    allowed = allowed_metrics((), state.query_filters())
    return request(site, tuple(m for m in KPI_METRICS if m in allowed), state, comparison="previous_period")


def kpis(result: QueryResult) -> list[Kpi]:
    """Totals of the range, each with the previous period of the same length (the aggregator's comparison)."""
    row = result.rows[0] if result.rows else None
    out = []
    for i, name in enumerate(result.request.metrics):
        value = row.metrics[i] if row else 0
        comp = row.comparison if row else None
        previous = comp.metrics[i] if comp else 0
        change = comp.change[i] if comp else (None if value else 0)
        out.append(Kpi(name, METRIC_LABELS[name], value, previous, change))
    return out


def buckets(state: ViewState) -> list[str]:
    """Every time bucket of the range, so days without data show as zero instead of vanishing."""
    out: list[str] = []
    day = state.start
    if state.interval == "hour":
        while day <= state.end:
            out += [f"{day.isoformat()} {h:02d}:00:00" for h in range(24)]
            day += dt.timedelta(days=1)
    elif state.interval == "day":
        while day <= state.end:
            out.append(day.isoformat())
            day += dt.timedelta(days=1)
    elif state.interval == "week":
        day -= dt.timedelta(days=day.weekday())
        while day <= state.end:
            out.append(day.isoformat())
            day += dt.timedelta(days=7)
    else:
        day = day.replace(day=1)
        while day <= state.end:
            out.append(day.isoformat())
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def series_request(site: str, state: ViewState) -> QueryRequest:
    # Views per visit by time is pageviews / visits of each bucket (the Stats API answers it without dimensions only).
    metrics = ("pageviews", "visits") if state.metric == "views_per_visit" else (state.metric,)
    return request(site, metrics, state, (f"time:{state.interval}",))


def series(result: QueryResult, state: ViewState, now: dt.datetime) -> list[tuple[str, Number]]:
    if state.metric == "views_per_visit":
        values = {
            str(r.dimensions[0]): round(r.metrics[0] / r.metrics[1], 2) if r.metrics[1] else 0.0 for r in result.rows
        }
    else:
        values = {str(r.dimensions[0]): r.metrics[0] for r in result.rows}
    cutoff = now.strftime("%Y-%m-%d %H:00:00") if state.interval == "hour" else now.date().isoformat()
    return [(b, values.get(b, 0)) for b in buckets(state) if b <= cutoff]


@dataclass(frozen=True, slots=True)
class PanelRow:
    dimensions: tuple[str, ...]
    metrics: tuple[Number, ...]
    share: float
    filter_query: str | None  # the URL query that filters by this row; None for (other)

    @property
    def label(self) -> str:
        return " ".join(self.dimensions)


@dataclass(frozen=True, slots=True)
class PanelData:
    panel: Panel
    tab: Tab
    rows: list[PanelRow]
    total_rows: int
    metric_labels: tuple[str, ...]

    def cells(self, row: PanelRow) -> list[tuple[str, str, Number]]:
        """(metric, shown text, exact value) per metric column."""
        return [(m, fmt.metric(m, v), v) for m, v in zip(self.tab.metrics, row.metrics, strict=True)]


def panel_request(site: str, state: ViewState, tab: Tab, limit: int = TOP_ROWS) -> QueryRequest:
    return request(site, tab.metrics, state, tab.dimensions, limit)


def panel(result: QueryResult, state: ViewState, panel: Panel, tab: Tab) -> PanelData:
    top = max((float(r.metrics[0]) for r in result.rows), default=0.0) or 1.0
    rows: list[PanelRow] = []
    for r in result.rows:
        dims = tuple(str(d) for d in r.dimensions)
        query = None
        if OTHER not in dims:
            query = state.with_filters(dict(zip(tab.filter_keys, dims, strict=True)))
        rows.append(PanelRow(dims, tuple(r.metrics), float(r.metrics[0]) / top, query))
    return PanelData(panel, tab, rows, result.total_rows, tuple(METRIC_LABELS[m] for m in tab.metrics))


def export_rows(reports: Reports, site: str, state: ViewState, tab: Tab) -> tuple[list[str], list[list[object]]]:
    """The panel's full table for CSV: the same query as on screen, more rows."""
    result = reports.run(panel_request(site, state, tab, EXPORT_ROWS))
    header = [FILTERS[k][1] for k in tab.filter_keys] + list(tab.metrics)
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
    points: list[tuple[str, Number]]
    panels: list[PanelData]
    realtime: Realtime
    warnings: list[str]


def page(reports: Reports, site: str, state: ViewState, now: dt.datetime) -> Page:
    """Every number of the overview, from one batch of queries."""
    tabs = [(p, p.tab(state.tab(p.key))) for p in PANELS]
    requests = [kpi_request(site, state), series_request(site, state)]
    requests += [panel_request(site, state, tab) for _, tab in tabs]
    results = reports.run_many(requests, now, page=True)
    k, s, *rest = results
    panels = [panel(result, state, p, tab) for result, (p, tab) in zip(rest, tabs, strict=True)]
    # The aggregator says when part of the range cannot answer (e.g. raw events past retention).
    warnings = list(dict.fromkeys(w for result in results for w in result.warnings))
    as_of = min((r.stale_as_of for r in results if r.stale_as_of is not None), default=None)
    return Page(kpis(k), series(s, state, now), panels, realtime(reports, site, now, as_of), warnings)
