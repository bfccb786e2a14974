"""The nightly report's typed model, filled only through the query API.

Every number comes from :meth:`aggregator.query.Querier.run_many`, so a report
is exactly as k-anonymous as the dashboards and the Stats API (PRIVACY.md rule
5): breakdown rows under K visitors are folded into ``(other)`` by the query
layer, and only the site's unfiltered totals (the KPIs) are exempt. Nothing
here reads the lake directly, and nothing here computes a change: comparison
periods are :func:`aggregator.periods.comparison_range` and every change is the
query layer's (:func:`aggregator.periods.change`), as on the dashboards.

**One rule for comparisons, here and on the dashboards:** a period is compared
with the same number of days just before it (Plausible's "previous period"):
a day with the day before, an ISO week with the week before, a month of 30
days with the 30 days before it (not the previous calendar month, whose
length differs). A day is also compared with the same weekday a week earlier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregator.annotations import Annotation, for_period
from aggregator.charts import Point
from aggregator.metrics import KPI_LABELS, KPI_METRICS, Number
from aggregator.periods import comparison_range
from aggregator.query import OTHER, Querier, QueryRequest, QueryResult
from aggregator.report_goals import FunnelSummary, GoalSection, funnel_summaries, goal_request, goal_section
from aggregator.request import num
from aggregator.series import points

SCHEMA_VERSION = 2


_VISIT_METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
_PAGE_METRICS = ("visitors", "pageviews", "time_on_page", "scroll_depth")


@dataclass(frozen=True, slots=True)
class BreakdownSpec:
    key: str  # file name of its CSV, key in summary.json
    title: str
    dimension: str
    column: str  # heading of the dimension column
    metrics: tuple[str, ...]


BREAKDOWNS: tuple[BreakdownSpec, ...] = (
    BreakdownSpec("pages", "Top pages", "event:page", "Page", _PAGE_METRICS),
    BreakdownSpec("sources", "Sources", "visit:source", "Source", _VISIT_METRICS),
    BreakdownSpec("channels", "Channels", "visit:channel", "Channel", _VISIT_METRICS),
    BreakdownSpec("browsers", "Browsers", "visit:browser", "Browser", _VISIT_METRICS),
    BreakdownSpec("os", "Operating systems", "visit:os", "Operating system", _VISIT_METRICS),
    BreakdownSpec("devices", "Devices", "visit:device", "Device", _VISIT_METRICS),
    BreakdownSpec("isps", "ISPs", "visit:isp", "ISP", _VISIT_METRICS),
)


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # "day", "week" (ISO week) or "month"
    start: dt.date
    end: dt.date

    @classmethod
    def day(cls, day: dt.date) -> Period:
        return cls("day", day, day)

    @classmethod
    def iso_week(cls, day: dt.date) -> Period:
        monday = day - dt.timedelta(days=day.weekday())
        return cls("week", monday, monday + dt.timedelta(days=6))

    @classmethod
    def month(cls, day: dt.date) -> Period:
        first = day.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return cls("month", first, nxt - dt.timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def name(self) -> str:
        """Directory name and label: ``2026-11-25``, ``week-2026-W48``, ``month-2026-11``."""
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"week-{year}-W{week:02d}"
        return f"month-{self.start:%Y-%m}"

    @property
    def title(self) -> str:
        if self.kind == "day":
            return f"{self.start:%A} {self.start.isoformat()}"
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"Week {year}-W{week:02d} ({self.start.isoformat()} to {self.end.isoformat()})"
        return f"{self.start:%B %Y}"

    def comparisons(self) -> tuple[tuple[str, str, bool], ...]:
        """(key, label, match day of week) of each comparison column."""
        if self.kind == "day":
            return (("previous", "vs previous day", False), ("week_ago", "vs same weekday a week earlier", True))
        return (("previous", f"vs the {self.days} days before", False),)


@dataclass(frozen=True, slots=True)
class Compared:
    """A comparison period, and whether it has any data (no visits: changes are not shown as percentages)."""

    key: str
    label: str
    start: dt.date
    end: dt.date
    visits: int

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def name(self) -> str:
        s, e = self.start.isoformat(), self.end.isoformat()
        return s if s == e else f"{s} to {e}"


@dataclass(frozen=True, slots=True)
class Kpi:
    metric: str
    label: str
    value: Number
    previous: dict[str, Number | None]  # by comparison key (None: no comparison row)
    change: dict[str, Number | None]  # percent, or percentage points for the bounce rate (periods.change)


@dataclass(frozen=True, slots=True)
class Row:
    value: str
    metrics: tuple[Number, ...]

    @property
    def is_other(self) -> bool:
        return self.value == OTHER


@dataclass(frozen=True, slots=True)
class Breakdown:
    spec: BreakdownSpec
    rows: tuple[Row, ...]  # all of them, k-anonymous, (other) last when shown
    folded_rows: int
    other_suppressed: bool


@dataclass(frozen=True, slots=True)
class Mover:
    breakdown: str
    value: str
    comparison: str
    visitors: int
    previous: int

    @property
    def delta(self) -> int:
        return self.visitors - self.previous


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    label: str
    visitors: int
    pageviews: int


@dataclass(frozen=True, slots=True)
class Report:
    site: str
    period: Period
    k: int
    kpis: tuple[Kpi, ...]
    series_title: str
    series: tuple[SeriesPoint, ...]
    visitors_chart: tuple[Point, ...]  # with the first comparison period, bucket by bucket
    pageviews_chart: tuple[Point, ...]
    breakdowns: tuple[Breakdown, ...]
    movers: tuple[Mover, ...]
    comparisons: tuple[Compared, ...]
    annotations: tuple[Annotation, ...]
    warnings: tuple[str, ...]
    #: Conversions (aggregator/report_goals.py): None for a site without goals; its funnels' steps.
    goals: GoalSection | None = None
    funnels: tuple[FunnelSummary, ...] = ()

    @property
    def series_dimension(self) -> str:
        return "time:hour" if self.period.kind == "day" else "time:day"


def build_report(
    querier: Querier,
    site: str,
    period: Period,
    now: dt.datetime,
    *,
    movers: int = 8,
    annotations: list[Annotation] | None = None,
) -> Report:
    """All the queries of one report in one :meth:`Querier.run_many` call (raw days are sessionized once)."""
    kpi_names = KPI_METRICS
    rng = (period.start, period.end)
    today = now.astimezone(dt.UTC).date()
    requests: list[QueryRequest] = []
    for _, _, match in period.comparisons():
        requests.append(QueryRequest(site, kpi_names, rng, comparison="previous_period", match_day_of_week=match))
        requests += [
            QueryRequest(site, b.metrics, rng, (b.dimension,), comparison="previous_period", match_day_of_week=match)
            for b in BREAKDOWNS
        ]
    series_dim = "time:hour" if period.kind == "day" else "time:day"
    c_start, c_end = comparison_range("previous_period", period.start, period.end, today)
    requests.append(QueryRequest(site, ("visitors", "pageviews"), rng, (series_dim,)))
    requests.append(QueryRequest(site, ("visitors", "pageviews"), (c_start, c_end), (series_dim,)))
    goals = len(querier.goals(site))
    if goals:
        requests += [goal_request(site, period.start, period.end, match) for _, _, match in period.comparisons()]
    results = querier.run_many(requests, now)
    goal_results = results[len(results) - len(period.comparisons()) :] if goals else []
    results = results[: len(results) - len(goal_results)]
    per = len(BREAKDOWNS) + 1
    groups = [results[i * per : (i + 1) * per] for i in range(len(period.comparisons()))]

    compared = tuple(
        _compared(key, label, rs[0]) for (key, label, _), rs in zip(period.comparisons(), groups, strict=True)
    )
    total = groups[0][0].rows[0]
    kpis = []
    for i, (metric, label) in enumerate(KPI_LABELS.items()):
        previous: dict[str, Number | None] = {}
        changes: dict[str, Number | None] = {}
        for c, rs in zip(compared, groups, strict=True):
            comp = rs[0].rows[0].comparison
            previous[c.key] = comp.metrics[i] if comp is not None else None
            changes[c.key] = comp.change[i] if comp is not None and c.visits else None
        kpis.append(Kpi(metric, label, num(total.metrics[i]), previous, changes))
    breakdowns = tuple(_breakdown(spec, r) for spec, r in zip(BREAKDOWNS, groups[0][1:], strict=True))
    found: list[Mover] = []
    for c, rs in zip(compared, groups, strict=True):
        for spec, result in zip(BREAKDOWNS, rs[1:], strict=True):
            found += _movers(spec, result, c.label)
    found.sort(key=lambda m: (-abs(m.delta), m.breakdown, m.value, m.comparison))
    current, before = results[-2], results[-1]
    warnings = sorted({w for r in results for w in r.warnings})
    return Report(
        site=site,
        period=period,
        k=querier.settings.k_anonymity,
        kpis=tuple(kpis),
        series_title=f"Visitors and pageviews per {'hour (UTC)' if period.kind == 'day' else 'day'}",
        series=_series(current, period),
        visitors_chart=tuple(points(current, before, value=lambda m: m[0])),
        pageviews_chart=tuple(points(current, before, value=lambda m: m[1])),
        breakdowns=breakdowns,
        movers=tuple(found[:movers]),
        comparisons=compared,
        annotations=tuple(for_period(annotations or [], site, period.start, period.end)),
        warnings=tuple(warnings),
        goals=goal_section(goal_results, [c.key for c in compared], {c.key: c.visits > 0 for c in compared}, goals)
        if goals
        else None,
        funnels=funnel_summaries(querier, site, period.start, period.end, now),
    )


def _compared(key: str, label: str, kpi: QueryResult) -> Compared:
    assert kpi.comparison_range is not None  # asked with a comparison
    row = kpi.rows[0]
    visits_at = kpi.request.metrics.index("visits")
    visits = int(num(row.comparison.metrics[visits_at])) if row.comparison is not None else 0
    return Compared(key, label, kpi.comparison_range[0], kpi.comparison_range[1], visits)


def _breakdown(spec: BreakdownSpec, result: QueryResult) -> Breakdown:
    rows = tuple(Row(r.dimensions[0], tuple(num(m) for m in r.metrics)) for r in result.rows)
    # The query API appends (other) after the sorted rows; keep it last.
    rows = tuple(r for r in rows if not r.is_other) + tuple(r for r in rows if r.is_other)
    return Breakdown(spec, rows, result.folded_rows, result.other_suppressed)


def _movers(spec: BreakdownSpec, result: QueryResult, label: str) -> list[Mover]:
    """Rows shown (at least K people) in both periods whose visitors changed.

    A row the comparison period did not show was absent there or folded into
    ``(other)``; how small it was is not known (and not ours to reveal).
    """
    out = []
    for row in result.rows:
        comp = row.comparison
        if row.dimensions[0] == OTHER or comp is None or not comp.metrics[0]:
            continue  # a shown row has at least K visitors: 0 means it was not shown there
        now_v, before = int(num(row.metrics[0])), int(num(comp.metrics[0]))
        if now_v != before:
            out.append(Mover(spec.title, row.dimensions[0], label, now_v, before))
    return out


def _series(result: QueryResult, period: Period) -> tuple[SeriesPoint, ...]:
    """Every hour (or day) of the period: the site's unfiltered series is exact (PRIVACY.md rule 5)."""
    out = []
    for p, pv in zip(points(result), points(result, value=lambda m: m[1]), strict=True):
        label = p.label[11:13] if period.kind == "day" else p.label[5:]
        out.append(SeriesPoint(label, int(p.value or 0), int(pv.value or 0)))
    return tuple(out)


def other_note(k: int) -> str:
    return (
        f"{OTHER} counts, exactly, the visitors of the rows that each describe fewer than {k} people: those rows "
        "are never shown by name (k-anonymity). When even together they are fewer, it is left out entirely."
    )


VISITORS_NOTE = (
    "Visitors are counted per UTC day: the same person on two days counts twice, because the daily key "
    "cannot link days (by design). Weekly and monthly figures are sums of daily visitors."
)

COMPARISON_NOTE = (
    "Each period is compared with the same number of days just before it (a day also with the same weekday a "
    "week earlier); the dashboards use the same rule. Changes are whole percent (bounce rate: percentage points); "
    "a comparison period without visits has no change."
)
