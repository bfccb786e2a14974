"""The query API: typed requests in, k-anonymous aggregate rows out.

Used by the dashboards, the reports and the HTTP Stats API (a thin adapter over
:mod:`aggregator.stats_api`). There is deliberately no way to ask for events or
day keys: every answer is a set of aggregate rows, and every row describing
fewer than K distinct visitors is folded into ``(other)`` (PRIVACY.md rule 5).

Each day in range is answered from its rollup when the query allows (no filters,
at most one rollup dimension, and a rollup built from the day's current files),
else from raw events with partition pruning (only that site's day directories
are listed). Components of both add up exactly, so mixing them is exact too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from aggregator.dates import months_back
from aggregator.db import connect
from aggregator.dimensions import DIMENSIONS
from aggregator.lake import Lake
from aggregator.metrics import METRICS, Components, Number
from aggregator.querybuild import FILTER_OPS, Filter, aggregate_sql, raw_source, rollup_sql
from aggregator.rollup import current_rollup
from aggregator.settings import Settings

OTHER = "(other)"
DATE_RANGES = ("day", "7d", "30d", "month", "12mo", "all")
MAX_LIMIT = 10_000


class QueryError(ValueError):
    """The request names something unknown or is malformed; the HTTP layer answers 400."""


@dataclass(frozen=True, slots=True)
class QueryRequest:
    site_id: str
    metrics: tuple[str, ...]
    date_range: str | tuple[dt.date, dt.date] = "30d"
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = MAX_LIMIT
    offset: int = 0
    total_rows: bool = False
    comparison: str | None = None  # "previous_period"

    def validate(self) -> None:
        if not self.site_id:
            raise QueryError("site_id is required")
        if not self.metrics:
            raise QueryError("at least one metric is required")
        for m in self.metrics:
            if m not in METRICS:
                raise QueryError(f"unknown metric {m!r}")
        for d in self.dimensions:
            if d not in DIMENSIONS:
                raise QueryError(f"unknown dimension {d!r}")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise QueryError("a dimension is listed twice")
        for f in self.filters:
            if f.op not in FILTER_OPS:
                raise QueryError(f"unknown filter operator {f.op!r}")
            if f.dimension not in DIMENSIONS:
                raise QueryError(f"unknown dimension {f.dimension!r} in filter")
            if not f.values:
                raise QueryError(f"filter on {f.dimension!r} has no values")
        for key, direction in self.order_by:
            if key not in self.metrics and key not in self.dimensions:
                raise QueryError(f"order_by {key!r} is neither a requested metric nor a dimension")
            if direction not in ("asc", "desc"):
                raise QueryError(f"order_by direction must be asc or desc, not {direction!r}")
        if isinstance(self.date_range, str):
            if self.date_range not in DATE_RANGES:
                raise QueryError(f"unknown date_range {self.date_range!r}")
        elif self.date_range[0] > self.date_range[1]:
            raise QueryError("date_range starts after it ends")
        if not 1 <= self.limit <= MAX_LIMIT or self.offset < 0:
            raise QueryError(f"pagination: limit must be 1..{MAX_LIMIT}, offset >= 0")
        if self.comparison not in (None, "previous_period"):
            raise QueryError(f"unknown comparison {self.comparison!r}")


@dataclass(frozen=True, slots=True)
class Comparison:
    dimensions: tuple[str, ...]
    metrics: tuple[Number, ...]
    change: tuple[Number | None, ...]


@dataclass(frozen=True, slots=True)
class ResultRow:
    dimensions: tuple[str, ...]
    metrics: tuple[Number, ...]
    comparison: Comparison | None = None


@dataclass(slots=True)
class QueryResult:
    request: QueryRequest
    start: dt.date
    end: dt.date
    rows: list[ResultRow]
    total_rows: int
    k_anonymity: int
    folded_rows: int = 0
    other_suppressed: bool = False
    rollup_days: int = 0
    raw_days: int = 0
    comparison_range: tuple[dt.date, dt.date] | None = None
    warnings: list[str] = field(default_factory=list)


class Querier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_dir)

    def resolve_range(self, request: QueryRequest, now: dt.datetime) -> tuple[dt.date, dt.date]:
        today = now.astimezone(dt.UTC).date()
        r = request.date_range
        if not isinstance(r, str):
            return r
        if r == "day":
            return today, today
        if r in ("7d", "30d"):
            return today - dt.timedelta(days=int(r[:-1]) - 1), today
        if r == "month":
            return today.replace(day=1), today
        if r == "12mo":
            return months_back(today.replace(day=1), 11), today
        days = self.lake.event_days(request.site_id) + self.lake.rollup_days(request.site_id)
        return (min(days) if days else today), today

    def run(self, request: QueryRequest, now: dt.datetime) -> QueryResult:
        request.validate()
        start, end = self.resolve_range(request, now)
        result = self._run_range(request, start, end)
        if request.comparison == "previous_period":
            length = (end - start).days + 1
            p_end = start - dt.timedelta(days=1)
            p_start = p_end - dt.timedelta(days=length - 1)
            previous = self._run_range(request, p_start, p_end)
            result.comparison_range = (p_start, p_end)
            result.rows = _compare(request, result.rows, previous.rows)
        return result

    def _run_range(self, request: QueryRequest, start: dt.date, end: dt.date) -> QueryResult:
        for attempt in range(4):
            try:
                return self._attempt(request, start, end)
            except duckdb.IOException:
                # A file of our snapshot was compacted or purged meanwhile: list again.
                if attempt == 3:
                    raise
        raise AssertionError("unreachable")

    def _attempt(self, request: QueryRequest, start: dt.date, end: dt.date) -> QueryResult:
        site, dims = request.site_id, request.dimensions
        rollup_ok = not request.filters and len(dims) <= 1 and all(DIMENSIONS[d].rollup for d in dims)
        raw_files: list[str] = []
        rollup_files: list[str] = []
        raw_days = rollup_days = 0
        purged_days = 0
        day = start
        while day <= end:
            files = self.lake.event_files(site, day)
            rollup = current_rollup(self.lake, site, day, files)
            if rollup_ok and rollup is not None:
                rollup_files.append(str(rollup))
                rollup_days += 1
            elif files:
                raw_files.extend(str(f) for f in files)
                raw_days += 1
            elif rollup is not None:
                purged_days += 1
            day += dt.timedelta(days=1)
        groups: dict[tuple[str, ...], Components] = {}
        con = connect(self.settings)
        try:
            if raw_files:
                params: dict[str, object] = {"files": raw_files}
                sql = aggregate_sql(raw_source(), dims, request.filters, params)
                _merge(groups, con.execute(sql, params).fetchall(), len(dims))
            if rollup_files:
                params = {"rfiles": rollup_files}
                sql = rollup_sql(dims[0] if dims else None, params)
                _merge(groups, con.execute(sql, params).fetchall(), len(dims))
        finally:
            con.close()
        result = self._finish(request, start, end, groups)
        result.raw_days, result.rollup_days = raw_days, rollup_days
        if purged_days:
            result.warnings.append(
                f"{purged_days} day(s) in range have only daily aggregates left (raw events purged after "
                f"{self.settings.raw_retention_days} days): filters and this breakdown cannot use them"
            )
        return result

    def _finish(
        self, request: QueryRequest, start: dt.date, end: dt.date, groups: dict[tuple[str, ...], Components]
    ) -> QueryResult:
        k = self.settings.k_anonymity
        dims = request.dimensions
        if not dims:
            groups.setdefault((), Components())  # totals exist even for an empty range
        exempt = not dims and not request.filters  # a site's unfiltered totals only
        shown: list[tuple[tuple[str, ...], Components]] = []
        other = Components()
        folded = 0
        for key, comp in groups.items():
            if exempt or comp.visitors >= k:
                shown.append((key, comp))
            else:
                folded += 1
                other.add(comp)
        result = QueryResult(request, start, end, [], 0, k, folded_rows=folded)
        _sort(request, shown)
        if folded:
            if other.visitors >= k and dims:
                shown.append(((OTHER,) * len(dims), other))
            else:
                # The folded rows together still describe fewer than K visitors: not shown at all.
                result.other_suppressed = True
        result.total_rows = len(shown)
        page = shown[request.offset : request.offset + request.limit]
        result.rows = [ResultRow(key, tuple(comp.metric(m) for m in request.metrics)) for key, comp in page]
        return result


def _merge(groups: dict[tuple[str, ...], Components], rows: list[tuple[object, ...]], ndims: int) -> None:
    for row in rows:
        key = tuple(str(v) for v in row[:ndims])
        comp = Components.from_row(row[ndims:])
        if key in groups:
            groups[key].add(comp)
        else:
            groups[key] = comp


def _sort(request: QueryRequest, rows: list[tuple[tuple[str, ...], Components]]) -> None:
    rows.sort(key=lambda r: r[0])  # ties: dimension values ascending
    order = list(request.order_by)
    if not order:
        time_dims = [d for d in request.dimensions if d.startswith("time:")]
        order = [(d, "asc") for d in time_dims] or [(request.metrics[0], "desc")]
    for key, direction in reversed(order):
        if key in request.dimensions:
            i = request.dimensions.index(key)
            rows.sort(key=lambda r: r[0][i], reverse=direction == "desc")
        else:
            rows.sort(key=lambda r: r[1].metric(key), reverse=direction == "desc")


def _compare(request: QueryRequest, current: list[ResultRow], previous: list[ResultRow]) -> list[ResultRow]:
    # Time buckets of two periods differ by date: match them by position; other rows by their values.
    by_time = any(d.startswith("time:") for d in request.dimensions)
    prev_by_key = {r.dimensions: r for r in previous}
    out = []
    for i, row in enumerate(current):
        prev = (previous[i] if i < len(previous) else None) if by_time else prev_by_key.get(row.dimensions)
        if prev is None:
            out.append(row)
            continue
        change = tuple(_change(m, c, p) for m, c, p in zip(request.metrics, row.metrics, prev.metrics, strict=True))
        out.append(ResultRow(row.dimensions, row.metrics, Comparison(prev.dimensions, prev.metrics, change)))
    return out


def _change(metric: str, cur: Number, prev: Number) -> Number | None:
    if metric == "bounce_rate":
        return cur - prev  # percentage points
    if not prev:
        return None
    return round((cur - prev) / prev * 100)
