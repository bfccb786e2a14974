"""The query API: typed requests in, k-anonymous aggregate rows out.

Used by the dashboards, the reports and the HTTP Stats API (a thin adapter over
:mod:`aggregator.stats_api`). There is deliberately no way to ask for events or
day keys: every answer is a set of aggregate rows, and every row describing
fewer than K distinct visitors is folded into ``(other)`` (PRIVACY.md rule 5).

Each day in range is answered from its rollup when the query allows (no filters,
at most one rollup dimension, and a rollup built from the day's current files,
else one computed in memory from them), otherwise from raw events with partition
pruning (only that site's day directories are listed). Components of both add
up exactly, so mixing them is exact too.

A :class:`Querier` keeps one in-memory DuckDB database per process
(:mod:`aggregator.daycache`): rollup files are immutable (named after the raw
files they summarise), so their rows are loaded once and reused by every later
query; a day with raw files but no current rollup (today, right after an ingest
batch) is rolled up in memory once per raw-file set, with the builder's own
code, and answers every rollup-shaped query from then on. With
``rollup_max_stale`` (the dashboards), such a day is answered from its previous
rollup instead if that one is young enough, and the result says as of when.

Filtered queries and ``time:hour`` read raw events: only the day keys with an
event matching every filter are sessionized (exact, see
:func:`aggregator.querybuild.prefiltered_source`), and the one-dimension
queries of a page that share filters are answered by one rollup-shaped pass
over the filtered rows. Each call gets its own cursor, and a page of queries
(:meth:`Querier.run_many`) sums the rollup rows it needs once.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from duckdb import DuckDBPyConnection as Connection

from aggregator.dates import months_back
from aggregator.daycache import MissingDay, RollupStore, SumRow
from aggregator.db import connect
from aggregator.dimensions import DIMENSIONS, ROLLUP_DIMENSIONS, ROLLUP_PAIRS, ROLLUP_TIME_DIMENSIONS
from aggregator.lake import Lake
from aggregator.metrics import Components, Number
from aggregator.querybuild import (
    Filter,
    aggregate_sql,
    base_sql,
    filter_sql,
    long_sums_sql,
    prefiltered_source,
    raw_source,
)
from aggregator.request import (
    DATE_RANGES,
    MAX_LIMIT,
    OTHER,
    Comparison,
    CurrentVisitors,
    QueryError,
    QueryRequest,
    QueryResult,
    ResultRow,
)
from aggregator.rollup import current_rollup, rollup_format
from aggregator.settings import Settings

PAIR_DIMENSIONS = frozenset(ROLLUP_PAIRS.values())

__all__ = [
    "DATE_RANGES",
    "MAX_LIMIT",
    "OTHER",
    "Comparison",
    "CurrentVisitors",
    "Querier",
    "QueryError",
    "QueryRequest",
    "QueryResult",
    "ResultRow",
]


class Querier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_dir)
        self._db = connect(settings)
        self.rollups = RollupStore(self._db)

    def close(self) -> None:
        self._db.close()

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

    def current_visitors(self, site: str, now: dt.datetime, minutes: int = 5) -> CurrentVisitors:
        """Distinct visitors with an event in (now - minutes, now], from the raw events of today (and yesterday).

        Reads two columns of at most two days' files, so it stays cheap on a
        dashboard that refreshes it often.
        """
        if not site:
            raise QueryError("site_id is required")
        if not 1 <= minutes <= 60:
            raise QueryError("minutes must be 1..60")
        now = now.astimezone(dt.UTC)
        since = now - dt.timedelta(minutes=minutes)
        days = {since.date(), now.date(), now.date() - dt.timedelta(days=1)}
        count, newest = 0, None
        for attempt in range(4):
            files = [str(f) for day in sorted(days) for f in self.lake.event_files(site, day)]
            if not files:
                break
            cur = self._db.cursor()
            try:
                # Visitors are (UTC day, day key): a visitor active across midnight counts twice, as everywhere.
                row = cur.execute(
                    "SELECT count(DISTINCT (CAST(ts AS DATE), day_key)) FILTER (WHERE ts > $since AND ts <= $now), "
                    "max(ts) FILTER (WHERE ts <= $now) FROM read_parquet($files)",
                    {"files": files, "since": since.replace(tzinfo=None), "now": now.replace(tzinfo=None)},
                ).fetchone()
            except duckdb.IOException:
                # A listed file was compacted or purged meanwhile: list again.
                if attempt == 3:
                    raise
                continue
            finally:
                cur.close()
            if row is not None:
                count = int(row[0])
                # To the minute: on a quiet site the exact second would date one visitor's event.
                newest = row[1].replace(second=0, microsecond=0, tzinfo=dt.UTC) if row[1] is not None else None
            break
        k = self.settings.k_anonymity
        return CurrentVisitors(site, minutes, now, count if count >= k else None, k, newest)

    def run(self, request: QueryRequest, now: dt.datetime, *, max_stale: float | None = None) -> QueryResult:
        return self.run_many([request], now, max_stale=max_stale)[0]

    def run_many(
        self, requests: list[QueryRequest], now: dt.datetime, *, max_stale: float | None = None
    ) -> list[QueryResult]:
        """Several queries at once (a dashboard page): files are listed and raw days sessionized once.

        ``max_stale``: seconds a day's previous rollup may answer after new events landed in that day
        (default: the ``rollup_max_stale`` setting; 0: exact).
        """
        stale_limit = self.settings.rollup_max_stale if max_stale is None else max_stale
        for request in requests:
            request.validate()
        for attempt in range(4):
            cur = self._db.cursor()
            shared = _Shared(_rollup_dims(requests), _filtered_dims(requests), stale_limit)
            try:
                return [self._run(cur, shared, request, now) for request in requests]
            except duckdb.IOException:
                # A file of our snapshot was compacted or purged meanwhile: list again.
                if attempt == 3:
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")

    def _run(self, cur: Connection, shared: _Shared, request: QueryRequest, now: dt.datetime) -> QueryResult:
        key = (request.site_id, request.date_range)
        if key not in shared.ranges:  # "all" lists the site's day directories: once per page
            shared.ranges[key] = self.resolve_range(request, now)
        start, end = shared.ranges[key]
        result = self._run_range(cur, shared, request, start, end)
        if request.comparison == "previous_period":
            length = (end - start).days + 1
            p_end = start - dt.timedelta(days=1)
            p_start = p_end - dt.timedelta(days=length - 1)
            previous = self._run_range(cur, shared, request, p_start, p_end)
            result.comparison_range = (p_start, p_end)
            result.rows = _compare(request, result.rows, previous.rows)
        return result

    def _day(self, shared: _Shared, site: str, day: dt.date) -> tuple[list[Path], Path | None, float | None]:
        """A day's raw files, the rollup to answer it from (if any) and, if that one is stale, when it was built."""
        key = (site, day)
        if key not in shared.days:
            files = self.lake.event_files(site, day)
            rollup, built_at = current_rollup(self.lake, site, day, files), None
            if rollup is None and files and shared.max_stale > 0:
                rollup, built_at = self._stale_rollup(site, day, shared.max_stale)
            shared.days[key] = (files, rollup, built_at)
        return shared.days[key]

    def _stale_rollup(self, site: str, day: dt.date, limit: float) -> tuple[Path | None, float | None]:
        # The day's previous rollup (from before its latest batch), if young enough: exact as of then.
        built = Lake.visible_parquet(self.lake.rollup_day_dir(site, day))
        if not built:
            return None, None
        try:
            mtime = built[-1].stat().st_mtime
        except (OSError, AttributeError, NotImplementedError):  # an object store: no cheap age, stay exact
            return None, None
        if time.time() - mtime > limit:
            return None, None
        return built[-1], mtime

    def _run_range(
        self, cur: Connection, shared: _Shared, request: QueryRequest, start: dt.date, end: dt.date
    ) -> QueryResult:
        site, dims = request.site_id, request.dimensions
        rollup_shape, rollup_dim = _rollup_dim(dims)
        rollup_ok = not request.filters and rollup_shape
        raw_files: list[str] = []
        rollup_files: list[str] = []
        missing: list[MissingDay] = []
        raw_days = rollup_days = purged_days = 0
        stale: list[float] = []
        day = start
        while day <= end:
            files, rollup, built_at = self._day(shared, site, day)
            if built_at is not None and not rollup_ok:
                rollup = None  # a stale rollup answers only what it can; the rest reads the current files
            # A rollup built before pair dimensions existed (a purged day, or a stale one right after an
            # upgrade) cannot answer a pair: a day with raw files is rolled up anew, a purged one is not counted.
            outdated = rollup is not None and rollup_dim in PAIR_DIMENSIONS and rollup_format(rollup) < 2
            if rollup_ok and rollup is not None and not outdated:
                rollup_files.append(str(rollup))
                rollup_days += 1
                if built_at is not None:
                    stale.append(built_at)
            elif files:
                raw_days += 1
                if rollup_ok:  # rolled up in memory from these very files, once per process
                    missing.append(MissingDay(site, day, tuple(str(f) for f in files)))
                else:
                    raw_files.extend(str(f) for f in files)
            elif rollup is not None:
                purged_days += 1
            day += dt.timedelta(days=1)
        groups: dict[tuple[str, ...], Components] = {}
        if raw_files:
            # Our own temp tables (identifiers made up here), shared by the page's queries.
            params: dict[str, object] = {"files": raw_files}
            source = prefiltered_source(request.filters, params) if request.filters else raw_source()
            rows = shared.table(
                cur, ("raw", repr(request.filters), *raw_files), f"WITH {base_sql(source)} SELECT * FROM rows", params
            )
            if rollup_shape:  # filtered (else rollups answer): one pass for every panel sharing these filters
                _merge_rollup(groups, self._filtered_sums(cur, shared, rows, request.filters), rollup_dim)
            else:
                params = {}
                sql = aggregate_sql(dims, request.filters, params, rows=rows)
                _merge(groups, cur.execute(sql, params).fetchall(), len(dims))
        if rollup_files or missing:
            sums_key = (tuple(rollup_files), tuple(missing))
            if sums_key not in shared.sums:
                shared.sums[sums_key] = self.rollups.sums(rollup_files, missing, shared.dims)
            _merge_rollup(groups, shared.sums[sums_key], rollup_dim)
        result = self._finish(request, start, end, groups)
        result.raw_days, result.rollup_days = raw_days, rollup_days
        if stale:
            result.stale_as_of = dt.datetime.fromtimestamp(min(stale), dt.UTC)
        if purged_days:
            result.warnings.append(
                f"{purged_days} day(s) in range have only daily aggregates left (raw events purged after "
                f"{self.settings.raw_retention_days} days): filters and this breakdown cannot use them"
            )
        return result

    @staticmethod
    def _filtered_sums(cur: Connection, shared: _Shared, rows: str, filters: tuple[Filter, ...]) -> list[SumRow]:
        """Rollup-shaped sums of the filtered rows for every dimension the page asks with these filters."""
        if rows not in shared.filtered:
            params: dict[str, object] = {}
            table = shared.table(
                cur, ("filtered", rows), f"SELECT * FROM {rows} WHERE {filter_sql(filters, params)}", params
            )
            params = {}
            result = cur.execute(long_sums_sql(shared.filter_dims[filters], params, rows=table), params).fetchall()
            shared.filtered[rows] = [(str(r[0]), str(r[1]), r[2], tuple(r[3:])) for r in result]
        return shared.filtered[rows]

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


@dataclass(slots=True)
class _Shared:
    """What the queries of one :meth:`Querier.run_many` call share: ranges, day listings, sums, temp tables."""

    dims: tuple[str, ...]  # rollup dimensions the batch asks for
    filter_dims: dict[tuple[Filter, ...], tuple[str, ...]]  # the same, per set of filters
    max_stale: float  # seconds a day's previous rollup may answer (0: exact)
    ranges: dict[tuple[str, object], tuple[dt.date, dt.date]] = field(default_factory=dict)
    days: dict[tuple[str, dt.date], tuple[list[Path], Path | None, float | None]] = field(default_factory=dict)
    sums: dict[tuple[tuple[str, ...], tuple[MissingDay, ...]], list[SumRow]] = field(default_factory=dict)
    tables: dict[tuple[str, ...], str] = field(default_factory=dict)
    filtered: dict[str, list[SumRow]] = field(default_factory=dict)  # per sessionized temp table

    def table(self, cur: Connection, key: tuple[str, ...], sql: str, params: dict[str, object]) -> str:
        if key not in self.tables:
            name = f"shared_{len(self.tables)}"  # made up here, never from input
            cur.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
            self.tables[key] = name
        return self.tables[key]


def _rollup_dim(dims: tuple[str, ...]) -> tuple[bool, str | None]:
    """Whether rollup rows can answer these dimensions, and from which rollup dimension (None: the totals)."""
    if not dims:
        return True, None
    if len(dims) == 1 and DIMENSIONS[dims[0]].rollup:
        return True, dims[0]
    if dims in ROLLUP_PAIRS:
        return True, ROLLUP_PAIRS[dims]
    return False, None


def _stored(request: QueryRequest) -> set[str]:
    # The rollup dimension a request needs, if any (time:* come from the daily totals).
    shape, dim = _rollup_dim(request.dimensions)
    return {dim} if shape and dim in ROLLUP_DIMENSIONS else set()


def _rollup_dims(requests: list[QueryRequest]) -> tuple[str, ...]:
    return tuple(sorted(set().union(*(_stored(r) for r in requests))))


def _filtered_dims(requests: list[QueryRequest]) -> dict[tuple[Filter, ...], tuple[str, ...]]:
    out: dict[tuple[Filter, ...], set[str]] = {}
    for r in requests:
        if r.filters:
            out.setdefault(r.filters, set()).update(_stored(r))
    return {f: tuple(d for d in ROLLUP_DIMENSIONS if d in dims) for f, dims in out.items()}


def _merge(groups: dict[tuple[str, ...], Components], rows: list[tuple[object, ...]], ndims: int) -> None:
    for row in rows:
        key = tuple(str(v) for v in row[:ndims])
        comp = Components.from_row(row[ndims:])
        if key in groups:
            groups[key].add(comp)
        else:
            groups[key] = comp


def _merge_rollup(groups: dict[tuple[str, ...], Components], rows: list[SumRow], dim: str | None) -> None:
    """Pick one request's rows out of a page's rollup sums (totals and time buckets from the daily totals)."""
    for dimension, value, day, comps in rows:
        if dim is None or dim in ROLLUP_TIME_DIMENSIONS:
            if dimension or day is None:
                continue
            key = () if dim is None else (_time_bucket(dim, day),)
        elif dimension == dim:
            key = tuple(json.loads(value)) if DIMENSIONS[dim].internal else (value,)
        else:
            continue
        comp = Components.from_row(comps)
        if key in groups:
            groups[key].add(comp)
        else:
            groups[key] = comp


def _time_bucket(dim: str, day: dt.date) -> str:
    # As the time:* dimensions' SQL: UTC day, ISO week (Monday) and month, as YYYY-MM-DD.
    if dim == "time:week":
        day -= dt.timedelta(days=day.weekday())
    elif dim == "time:month":
        day = day.replace(day=1)
    return day.isoformat()


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
