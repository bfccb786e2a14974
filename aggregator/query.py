"""The query API: typed requests in, k-anonymous aggregate rows out.

Used by the dashboards, the reports and the HTTP Stats API (a thin adapter over
:mod:`aggregator.stats_api`). There is deliberately no way to ask for events or
day keys: every answer is a set of aggregate rows, and every row describing
fewer than K distinct visitors is folded into ``(other)`` (PRIVACY.md rule 5).

Each day in range is answered from its rollup when the query allows (no filters,
at most one rollup dimension, and a rollup built from the day's current files),
else from raw events with partition pruning (only that site's day directories
are listed). Components of both add up exactly, so mixing them is exact too.

A :class:`Querier` keeps one in-memory DuckDB database per process: rollup
files are immutable (named after the raw files they summarise), so their rows
are loaded once and reused by every later query; each call gets its own cursor.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from duckdb import DuckDBPyConnection as Connection

from aggregator.dates import months_back
from aggregator.db import connect
from aggregator.dimensions import DIMENSIONS, ROLLUP_DIMENSIONS
from aggregator.lake import Lake
from aggregator.metrics import COMPONENT_NAMES, Components, Number
from aggregator.querybuild import aggregate_sql, base_sql, long_aggregate_sql, raw_source, rollup_sql
from aggregator.request import (
    DATE_RANGES,
    MAX_LIMIT,
    OTHER,
    Comparison,
    QueryError,
    QueryRequest,
    QueryResult,
    ResultRow,
)
from aggregator.rollup import current_rollup
from aggregator.settings import Settings

__all__ = [
    "DATE_RANGES",
    "MAX_LIMIT",
    "OTHER",
    "Comparison",
    "Querier",
    "QueryError",
    "QueryRequest",
    "QueryResult",
    "ResultRow",
]

#: Cached rollup files beyond this are dropped and reloaded on demand.
MAX_CACHED_ROLLUP_FILES = 20_000


class Querier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_dir)
        self._db = connect(settings)
        self._db.execute(
            "CREATE TABLE rollup_cache (file VARCHAR, site VARCHAR, day DATE, dimension VARCHAR, value VARCHAR, "
            + ", ".join(f"{c} BIGINT" for c in COMPONENT_NAMES)
            + ")"
        )
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

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

    def run(self, request: QueryRequest, now: dt.datetime) -> QueryResult:
        return self.run_many([request], now)[0]

    def run_many(self, requests: list[QueryRequest], now: dt.datetime) -> list[QueryResult]:
        """Several queries at once (a dashboard page): files are listed and raw days sessionized once."""
        for request in requests:
            request.validate()
        for attempt in range(4):
            cur = self._db.cursor()
            shared = _Shared(_rollup_dims(requests))
            try:
                return [self._run(cur, shared, request, now) for request in requests]
            except duckdb.IOException:
                # A file of our snapshot was compacted or purged meanwhile: list again.
                if attempt == 3:
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")

    def _load_rollups(self, files: list[str]) -> None:
        with self._lock:
            missing = [f for f in files if f not in self._loaded]
            if not missing:
                return
            if len(self._loaded) + len(missing) > MAX_CACHED_ROLLUP_FILES:
                self._db.execute("DELETE FROM rollup_cache")
                self._loaded.clear()
                missing = files
            cols = ", ".join(COMPONENT_NAMES)
            self._db.execute(
                f"INSERT INTO rollup_cache SELECT filename, site, day, dimension, value, {cols} "
                "FROM read_parquet($files, filename=true)",
                {"files": missing},
            )
            self._loaded.update(missing)

    def _run(self, cur: Connection, shared: _Shared, request: QueryRequest, now: dt.datetime) -> QueryResult:
        start, end = self.resolve_range(request, now)
        result = self._run_range(cur, shared, request, start, end)
        if request.comparison == "previous_period":
            length = (end - start).days + 1
            p_end = start - dt.timedelta(days=1)
            p_start = p_end - dt.timedelta(days=length - 1)
            previous = self._run_range(cur, shared, request, p_start, p_end)
            result.comparison_range = (p_start, p_end)
            result.rows = _compare(request, result.rows, previous.rows)
        return result

    def _day(self, shared: _Shared, site: str, day: dt.date) -> tuple[list[Path], Path | None]:
        key = (site, day)
        if key not in shared.days:
            files = self.lake.event_files(site, day)
            shared.days[key] = (files, current_rollup(self.lake, site, day, files))
        return shared.days[key]

    def _run_range(
        self, cur: Connection, shared: _Shared, request: QueryRequest, start: dt.date, end: dt.date
    ) -> QueryResult:
        site, dims = request.site_id, request.dimensions
        rollup_ok = not request.filters and len(dims) <= 1 and all(DIMENSIONS[d].rollup for d in dims)
        raw_files: list[str] = []
        rollup_files: list[str] = []
        raw_days = rollup_days = purged_days = 0
        day = start
        while day <= end:
            files, rollup = self._day(shared, site, day)
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
        dim = dims[0] if dims else None
        if raw_files:
            # Our own temp tables (identifiers made up here), shared by the page's queries.
            rows = shared.table(
                cur, ("raw", *raw_files), f"WITH {base_sql(raw_source())} SELECT * FROM rows", {"files": raw_files}
            )
            params: dict[str, object] = {}
            if rollup_ok and len(shared.dims) > 1:
                # Raw days answered in rollup shape, all of the page's dimensions in one pass.
                p: dict[str, object] = {}
                virtual = shared.table(cur, ("virtual", *raw_files), long_aggregate_sql(shared.dims, p, rows=rows), p)
                sql = rollup_sql(dim, params, source=virtual)
            else:
                sql = aggregate_sql(dims, request.filters, params, rows=rows)
            _merge(groups, cur.execute(sql, params).fetchall(), len(dims))
        if rollup_files:
            self._load_rollups(rollup_files)
            params = {"rfiles": rollup_files}
            sql = rollup_sql(dim, params, source="(SELECT * FROM rollup_cache WHERE list_contains($rfiles, file))")
            _merge(groups, cur.execute(sql, params).fetchall(), len(dims))
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


@dataclass(slots=True)
class _Shared:
    """What the queries of one :meth:`Querier.run_many` call share: day listings and temp tables."""

    dims: tuple[str, ...]  # rollup dimensions the batch asks for
    days: dict[tuple[str, dt.date], tuple[list[Path], Path | None]] = field(default_factory=dict)
    tables: dict[tuple[str, ...], str] = field(default_factory=dict)

    def table(self, cur: Connection, key: tuple[str, ...], sql: str, params: dict[str, object]) -> str:
        if key not in self.tables:
            name = f"shared_{len(self.tables)}"  # made up here, never from input
            cur.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
            self.tables[key] = name
        return self.tables[key]


def _rollup_dims(requests: list[QueryRequest]) -> tuple[str, ...]:
    dims = {d for r in requests for d in r.dimensions if d in ROLLUP_DIMENSIONS}
    return tuple(sorted(dims))


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
