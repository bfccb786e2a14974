"""The overview's numbers: KPI cards with change, the time series, the breakdown panels.

Every figure is a Stats API v2 query through :class:`~dashboards.reports.Reports`
with explicit dates, so the previous period is computed the same way as the
current one and a CSV export re-runs exactly the query behind its panel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from dashboards import fmt
from dashboards.panels import FILTERS, Panel, Tab
from dashboards.reports import Reports
from dashboards.viewstate import CHART_METRICS, ViewState

Number = int | float
KPI_METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page")
METRIC_LABELS: dict[str, str] = {**CHART_METRICS, "events": "Events", "scroll_depth": "Scroll depth"}
LOWER_IS_BETTER = frozenset({"bounce_rate"})
OTHER = "(other)"
TOP_ROWS = 10
EXPORT_ROWS = 10_000


def body(site: str, metrics: tuple[str, ...], start: dt.date, end: dt.date, filters: list[list[object]],
         dimensions: tuple[str, ...] = (), limit: int | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {
        "site_id": site,
        "metrics": list(metrics),
        "date_range": [start.isoformat(), end.isoformat()],
        "dimensions": list(dimensions),
        "filters": filters,
    }
    if limit is not None:
        q["pagination"] = {"limit": limit, "offset": 0}
    return q


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


def _change(name: str, cur: Number, prev: Number) -> Number | None:
    if name == "bounce_rate":
        return cur - prev  # percentage points
    if not prev:
        return None if cur else 0
    return round((cur - prev) / prev * 100)


def kpis(reports: Reports, site: str, state: ViewState) -> list[Kpi]:
    filters = state.stats_filters()
    cur = reports.query(body(site, KPI_METRICS, state.start, state.end, filters))
    p_start, p_end = state.previous()
    prev = reports.query(body(site, KPI_METRICS, p_start, p_end, filters))
    cur_values = _totals(cur)
    prev_values = _totals(prev)
    return [
        Kpi(m, METRIC_LABELS[m], c, p, _change(m, c, p))
        for m, c, p in zip(KPI_METRICS, cur_values, prev_values, strict=True)
    ]


def _totals(answer: dict[str, Any]) -> list[Number]:
    results = answer.get("results") or []
    if not results:
        return [0] * len(KPI_METRICS)
    return list(results[0]["metrics"])


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


def series(reports: Reports, site: str, state: ViewState, now: dt.datetime) -> list[tuple[str, Number]]:
    answer = reports.query(
        body(site, (state.metric,), state.start, state.end, state.stats_filters(), (f"time:{state.interval}",))
    )
    values = {str(r["dimensions"][0]): r["metrics"][0] for r in answer.get("results", [])}
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

    def formatted(self, row: PanelRow) -> list[str]:
        return [fmt.metric(m, v) for m, v in zip(self.tab.metrics, row.metrics, strict=True)]


def panel_answer(reports: Reports, site: str, state: ViewState, tab: Tab, limit: int) -> dict[str, Any]:
    return reports.query(
        body(site, tab.metrics, state.start, state.end, state.stats_filters(), tab.dimensions, limit)
    )


def panel(reports: Reports, site: str, state: ViewState, panel: Panel, tab: Tab, limit: int = TOP_ROWS) -> PanelData:
    answer = panel_answer(reports, site, state, tab, limit)
    results = answer.get("results", [])
    top = max((float(r["metrics"][0]) for r in results), default=0.0) or 1.0
    rows: list[PanelRow] = []
    for r in results:
        dims = tuple(str(d) for d in r["dimensions"])
        metrics = tuple(r["metrics"])
        query = None
        if OTHER not in dims:
            query = state.with_filters(dict(zip(tab.filter_keys, dims, strict=True)))
        rows.append(PanelRow(dims, metrics, float(metrics[0]) / top, query))
    meta = answer.get("meta", {})
    total = int(meta.get("total_rows", len(rows))) if isinstance(meta, dict) else len(rows)
    return PanelData(panel, tab, rows, total, tuple(METRIC_LABELS[m] for m in tab.metrics))


def export_rows(reports: Reports, site: str, state: ViewState, tab: Tab) -> tuple[list[str], list[list[object]]]:
    """The panel's full table for CSV: the same query as on screen, more rows."""
    answer = panel_answer(reports, site, state, tab, EXPORT_ROWS)
    header = [FILTERS[k][1] for k in tab.filter_keys] + list(tab.metrics)
    rows = [list(r["dimensions"]) + list(r["metrics"]) for r in answer.get("results", [])]
    return header, rows
