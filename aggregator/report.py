"""The nightly report's typed model, filled only through the query API.

Every number comes from :meth:`aggregator.query.Querier.run_many`, so a report
is exactly as k-anonymous as the dashboards and the Stats API (PRIVACY.md rule
5): breakdown rows under K visitors are folded into ``(other)`` by the query
layer, and only the site's unfiltered totals (the KPIs) are exempt. Nothing
here reads the lake directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregator.metrics import Number
from aggregator.query import OTHER, Querier, QueryRequest, QueryResult

SCHEMA_VERSION = 1

KPI_METRICS: tuple[tuple[str, str], ...] = (
    ("visitors", "Visitors"),
    ("visits", "Visits"),
    ("pageviews", "Pageviews"),
    ("views_per_visit", "Views per visit"),
    ("bounce_rate", "Bounce rate"),
    ("visit_duration", "Visit duration"),
    ("time_on_page", "Time on page"),
)

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

    def shifted(self, kind: str) -> Period:
        """The period to compare with: the previous one, or for a day also the same weekday a week earlier."""
        if kind == "week_ago":
            return Period(self.kind, self.start - dt.timedelta(days=7), self.end - dt.timedelta(days=7))
        if self.kind == "month":
            return Period.month(self.start - dt.timedelta(days=1))
        length = dt.timedelta(days=(self.end - self.start).days + 1)
        return Period(self.kind, self.start - length, self.end - length)

    def comparisons(self) -> tuple[tuple[str, str], ...]:
        """(key, label) of each comparison column."""
        if self.kind == "day":
            return (("previous", "vs previous day"), ("week_ago", "vs same day last week"))
        return (("previous", f"vs previous {self.kind}"),)


@dataclass(frozen=True, slots=True)
class Kpi:
    metric: str
    label: str
    value: Number
    previous: dict[str, Number]  # by comparison key
    change: dict[str, Number | None]  # percent, or percentage points for the bounce rate


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
    series_folded: bool
    breakdowns: tuple[Breakdown, ...]
    movers: tuple[Mover, ...]
    comparison_periods: dict[str, Period]
    warnings: tuple[str, ...]


def change(metric: str, current: Number, previous: Number) -> Number | None:
    if metric == "bounce_rate":
        return current - previous  # percentage points
    if not previous:
        return None
    return round((current - previous) / previous * 100, 1)


def build_report(querier: Querier, site: str, period: Period, now: dt.datetime, *, movers: int = 8) -> Report:
    """All the queries of one report in one :meth:`Querier.run_many` call (raw days are sessionized once)."""
    kpi_names = tuple(m for m, _ in KPI_METRICS)
    comps = {key: period.shifted(key) for key, _ in period.comparisons()}
    periods = {"current": period, **comps}
    requests: list[QueryRequest] = []
    for p in periods.values():
        rng = (p.start, p.end)
        requests.append(QueryRequest(site, kpi_names, rng))
        requests += [QueryRequest(site, b.metrics, rng, dimensions=(b.dimension,)) for b in BREAKDOWNS]
    series_dim = "time:hour" if period.kind == "day" else "time:day"
    requests.append(QueryRequest(site, ("visitors", "pageviews"), (period.start, period.end), (series_dim,)))
    results = querier.run_many(requests, now)
    per = len(BREAKDOWNS) + 1
    by_period = {name: results[i * per : (i + 1) * per] for i, name in enumerate(periods)}

    totals = {name: dict(zip(kpi_names, rs[0].rows[0].metrics, strict=True)) for name, rs in by_period.items()}
    kpis = tuple(
        Kpi(
            metric,
            label,
            totals["current"][metric],
            {key: totals[key][metric] for key in comps},
            {key: change(metric, totals["current"][metric], totals[key][metric]) for key in comps},
        )
        for metric, label in KPI_METRICS
    )
    breakdowns = tuple(_breakdown(spec, r) for spec, r in zip(BREAKDOWNS, by_period["current"][1:], strict=True))
    found: list[Mover] = []
    labels = dict(period.comparisons())
    for key in comps:
        for b, prev in zip(breakdowns, by_period[key][1:], strict=True):
            found += _movers(b, prev, labels[key])
    found.sort(key=lambda m: (-abs(m.delta), m.breakdown, m.value, m.comparison))
    series_result = results[-1]
    warnings = sorted({w for r in results for w in r.warnings})
    return Report(
        site=site,
        period=period,
        k=querier.settings.k_anonymity,
        kpis=kpis,
        series_title=f"Visitors and pageviews per {'hour (UTC)' if period.kind == 'day' else 'day'}",
        series=_series(series_result, period),
        series_folded=series_result.folded_rows > 0,
        breakdowns=breakdowns,
        movers=tuple(found[:movers]),
        comparison_periods=comps,
        warnings=tuple(warnings),
    )


def _breakdown(spec: BreakdownSpec, result: QueryResult) -> Breakdown:
    rows = tuple(Row(r.dimensions[0], r.metrics) for r in result.rows)
    # The query API appends (other) after the sorted rows; keep it last.
    rows = tuple(r for r in rows if not r.is_other) + tuple(r for r in rows if r.is_other)
    return Breakdown(spec, rows, result.folded_rows, result.other_suppressed)


def _movers(current: Breakdown, previous: QueryResult, label: str) -> list[Mover]:
    """Rows shown (at least K visitors) in both periods whose visitors changed.

    A row missing from the previous period was either absent or folded into
    ``(other)`` there; how small it was is not known (and not ours to reveal).
    """
    before = {r.dimensions[0]: int(r.metrics[0]) for r in previous.rows}
    out = []
    for row in current.rows:
        if row.is_other or row.value not in before:
            continue
        now_v = int(row.metrics[0])
        if now_v != before[row.value]:
            out.append(Mover(current.spec.title, row.value, label, now_v, before[row.value]))
    return out


def _series(result: QueryResult, period: Period) -> tuple[SeriesPoint, ...]:
    """Every hour (or day) of the period, zero where the query folded it into (other) or had nothing."""
    got = {r.dimensions[0]: r.metrics for r in result.rows if r.dimensions[0] != OTHER}
    if period.kind == "day":
        keys = [(f"{period.start.isoformat()} {h:02d}:00:00", f"{h:02d}") for h in range(24)]
    else:
        days = [period.start + dt.timedelta(days=i) for i in range((period.end - period.start).days + 1)]
        keys = [(d.isoformat(), d.isoformat()[5:]) for d in days]
    points = []
    for key, label in keys:
        visitors, pageviews = got.get(key, (0, 0))
        points.append(SeriesPoint(label, int(visitors), int(pageviews)))
    return tuple(points)


def other_note(k: int) -> str:
    return (
        f"{OTHER} sums the rows that each describe fewer than {k} visitors: they are never shown by name "
        "(k-anonymity). When even their sum is under that threshold, it is left out entirely."
    )


VISITORS_NOTE = (
    "Visitors are counted per UTC day: the same person on two days counts twice, because the daily key "
    "cannot link days (by design). Weekly and monthly figures are sums of daily visitors."
)
