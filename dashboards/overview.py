"""The overview's numbers: KPI cards (dashboards/kpis.py), the chart, the breakdown panels, realtime.

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

from aggregator import fmt
from aggregator.annotations import Annotation
from aggregator.charts import Point
from aggregator.drops import Dropped
from aggregator.metrics import Number
from aggregator.query import MAX_LIMIT, QueryRequest, QueryResult
from aggregator.request import OTHER, allowed_metrics, num
from collector.siteconfig import Site
from dashboards import charting
from dashboards.kpis import Compared, Kpi, base_request, compared, kpi_request, kpis, labels, request
from dashboards.panels import GOALS, PROPS_PANEL, Panel, Tab, filter_label, site_panels
from dashboards.querying import Queries
from dashboards.viewstate import ViewState

SHORT_LABELS = {"pageviews": "Views", "time_on_page": "Time", "scroll_depth": "Scroll", "bounce_rate": "Bounce",
                "visit_duration": "Duration", "conversion_rate": "CR", "group_conversion_rate": "CR"}  # fmt: skip
TOP_ROWS = 10
EXPORT_ROWS = MAX_LIMIT


#: Column headings (short, full) of the Goals panel and of a goal's properties, as Plausible names them.
GOAL_COLUMNS = {
    "visitors": ("Uniques", "Unique conversions"),
    "events": ("Total", "Total conversions"),
    "conversion_rate": ("CR", "Conversion rate"),
}


@dataclass(frozen=True, slots=True)
class PanelRow:
    dimensions: tuple[str, ...]
    label: str
    metrics: tuple[Number | None, ...]
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
    #: (short heading, full name) per metric column: a phone has room for "Views", not "Pageviews".
    metric_labels: tuple[tuple[str, str], ...] = ()

    @property
    def shown_named(self) -> int:
        return sum(1 for r in self.rows if r.filter_query is not None)

    def cells(self, row: PanelRow) -> list[tuple[str, str, Number | None]]:
        """(metric, shown text, exact value) per metric column; a conversion rate not shown is "–"."""
        return [(m, fmt.metric(m, v), v) for m, v in zip(self.metrics, row.metrics, strict=True)]


def column_labels(state: ViewState, panel: Panel, metrics: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    names = labels(state)
    out = []
    for m in metrics:
        if panel.key in (GOALS.key, PROPS_PANEL) and (state.goal_filtered or panel.key == GOALS.key):
            out.append(GOAL_COLUMNS.get(m, (SHORT_LABELS.get(m, names[m]), names[m])))
        elif state.goal_filtered and m == "visitors":
            out.append(("Conversions", "Unique conversions"))
        else:
            out.append((SHORT_LABELS.get(m, names[m]), names[m]))
    return tuple(out)


def tab_metrics(state: ViewState, tab: Tab) -> tuple[str, ...]:
    allowed = allowed_metrics(tab.dimensions, state.query_filters())
    wanted = tab.goal_metrics if state.goal_filtered else tab.metrics
    return tuple(m for m in wanted if m in allowed)


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
        rows.append(PanelRow(dims, tab.label_of(dims), r.metrics, float(num(r.metrics[0])) / top, query))
    metrics = result.request.metrics
    return PanelData(
        panel,
        tab,
        metrics,
        rows,
        len(named),
        result.folded_rows,
        result.other_suppressed,
        result.suppressed,
        column_labels(state, panel, metrics),
    )


def export_rows(
    queries: Queries, site: str, state: ViewState, tab: Tab, now: dt.datetime
) -> tuple[list[str], list[list[object]]]:
    """The panel's full table for CSV: the same query as on screen, every row."""
    result = queries.run(panel_request(site, state, tab, EXPORT_ROWS), now)
    header = [filter_label(k) for k in tab.filter_keys] + list(result.request.metrics)
    return header, [[*r.dimensions, *("" if m is None else m for m in r.metrics)] for r in result.rows]


REALTIME_MINUTES = 5


@dataclass(frozen=True, slots=True)
class Realtime:
    visitors: int | None  # None: fewer than K (k-anonymity hides the number)
    minutes: int
    freshness: str
    k: int


def realtime(queries: Queries, site: str, now: dt.datetime, as_of: dt.datetime | None = None) -> Realtime:
    """Visitors in the last 5 minutes, from data already ingested, and how fresh that data is.

    ``as_of``: the page's totals for today came from a rollup built then (one ingest batch behind).
    """
    cur = queries.current_visitors(site, now, REALTIME_MINUTES)
    last = queries.last_ingest()
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
class Conversions:
    """The site's goals, properties and funnels on the overview (None: the site has none of that kind)."""

    goals: PanelData | None
    props: PanelData | None
    prop_keys: tuple[str, ...]  # the keys the Properties panel can break down by (its key picker)
    funnels: tuple[str, ...]


#: How the "Filtered" line names the drop reasons and bot kinds (collector/reasons.py's codes).
REASON_LABELS = {
    "bot": "bots",
    "opt_out": "opted out",
    "localhost": "local test pages",
    "unknown_event": "unknown event names",
    "unparsable_url": "unparsable page URLs",
}
KIND_LABELS = {
    "crawler": "crawlers",
    "automation": "automated browsers",
    "client": "HTTP clients and monitors",
    "junk": "junk user agents",
    "datacenter": "from data centres",
}


@dataclass(frozen=True, slots=True)
class Filtered:
    """The overview's "Filtered" line: events dropped for the site in the page's period, by reason."""

    when: str  # "today", or "in this period"
    total: int
    reasons: tuple[tuple[str, int], ...]  # (label, events) of the reasons with any, bots first
    bot_kinds: tuple[tuple[str, int], ...]  # (label, events) of the bot kinds with any


def filtered(d: Dropped, today: dt.date) -> Filtered:
    # unknown_site drops never have a site (collector/dropcounts.py), so no site's line can show them.
    reasons = tuple((label, d.reasons[r]) for r, label in REASON_LABELS.items() if d.reasons.get(r))
    kinds = tuple((label, d.bot_kinds[k]) for k, label in KIND_LABELS.items() if d.bot_kinds.get(k))
    when = "today" if d.start == d.end == today else "in this period"
    return Filtered(when, sum(n for _, n in reasons), reasons, kinds)


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
    conversions: Conversions
    filtered: Filtered


def page(
    queries: Queries,
    site: str,
    state: ViewState,
    now: dt.datetime,
    notes: list[Annotation] | None = None,
    config: Site | None = None,
) -> Page:
    """Every number of the overview, from one batch of queries; ``config``: the site's goals, keys, funnels."""
    all_panels = site_panels(bool(config and config.goals), config.prop_keys if config else ())
    tabs = [(p, p.tab(state.tab(p.key))) for p in all_panels]
    series_requests = charting.requests(site, state)
    base = base_request(site, state)
    requests = [kpi_request(site, state), *([base] if base else []), *series_requests]
    first_panel = len(requests)
    requests += [panel_request(site, state, tab) for _, tab in tabs]
    results = queries.run_many(requests, now, page=True)
    k_result = results[0]
    series_results = results[first_panel - len(series_requests) : first_panel]
    data_from = queries.first_day(site)
    info = compared(results[1] if base else k_result, state, data_from)
    panels = [panel(result, state, p, tab) for result, (p, tab) in zip(results[first_panel:], tabs, strict=True)]
    # The aggregator says when part of the range cannot answer (e.g. raw events past retention).
    warnings = list(dict.fromkeys(w for result in results for w in result.warnings))
    as_of = min((r.stale_as_of for r in results if r.stale_as_of is not None), default=None)
    notes = [a for a in notes or [] if state.start <= a.day <= state.end]
    pts = charting.series(series_results, state, now, data_from)
    chart = charting.chart(pts, state, charting.markers(notes, state), queries.k_anonymity)
    by_key = {d.panel.key: d for d in panels}
    props = by_key.get(PROPS_PANEL)
    conversions = Conversions(
        by_key.get(GOALS.key),
        props,
        tuple(t.key for t in props.panel.tabs) if props else (),
        tuple(f.name for f in config.funnels) if config else (),
    )
    return Page(
        kpis(k_result, info, labels(state)),
        info,
        pts,
        chart,
        [d for d in panels if d.panel.key not in (GOALS.key, PROPS_PANEL)],
        realtime(queries, site, now, as_of),
        warnings,
        k_result.suppressed,
        notes,
        conversions,
        filtered(queries.dropped(site, state.start, state.end), now.date()),
    )
