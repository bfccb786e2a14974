"""The table decider and the relations a query reads: which table answers what, for one site, days and filters.

A :class:`Scope` is one (site, days, filters) of a page of queries
(:class:`Page`: one ``Querier.run_many`` call). For each column a request
groups by, it decides the table (Plausible's ``table_decider``):

* **rollup** — no filters and a column the daily rollups hold (totals, time
  buckets of days, one rollup dimension or pair): summed rollup rows, and days
  whose rollup is not built yet rolled up in memory once (aggregator/daycache.py);
* **visits** — only visit-level filters and a visit column: the per-visit
  table of each day, filtered, grouped by one GROUPING SETS pass;
* **rows** — anything else (event columns or filters, scroll depth, datetime
  ranges): the day's events joined to their visits, filtered.

Every table yields the same *day rows* (aggregator/querybuild.py), so the
privacy rules (aggregator/kanon.py) read them the same way whichever answered.
All columns a page asks of one scope and table are computed in one pass.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from duckdb import DuckDBPyConnection as Connection

from aggregator.daycache import MissingDay, RollupStore, SumRow
from aggregator.dimensions import DIMENSIONS, ROLLUP_DIMENSIONS, ROLLUP_PAIRS
from aggregator.filters import Compiler, Expr, is_visit_level, leaves
from aggregator.kanon import Agg, Key
from aggregator.lake import Lake, sql_path
from aggregator.metrics import Components
from aggregator.periods import bucket
from aggregator.querybuild import (
    LIGHT_METRICS,
    TOTAL,
    Column,
    column,
    day_rows_sql,
    event_day_rows_sql,
    joined_rows_sql,
    sums_sql,
)
from aggregator.rollup import current_rollup, current_visits, rollup_format
from aggregator.sessions import visits_sql

Mode = Literal["rollup", "visits", "rows"]
TIME_BY_DAY = ("time:day", "time:week", "time:month")
#: Visit dimensions taken from the visit's entry or exit event (not the events' own columns).
VISIT_DERIVED = frozenset(
    {"visit:entry_page", "visit:exit_page", "visit:source", "visit:referrer", "visit:channel"}
    | {f"visit:utm_{u}" for u in ("source", "medium", "campaign", "content", "term")}
)
PAIRS = {v: k for k, v in ROLLUP_PAIRS.items()}


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request groups by: its column, and whether it is a time series bucketed from daily totals."""

    column: Column
    dimensions: tuple[str, ...]

    @property
    def time_bucket(self) -> str | None:
        return self.dimensions[0] if len(self.dimensions) == 1 and self.dimensions[0] in TIME_BY_DAY else None

    @property
    def rollup_name(self) -> str | None:
        """The rollup dimension holding this column ('' for totals and time buckets), None if none does."""
        if not self.dimensions or self.time_bucket:
            return ""
        if len(self.dimensions) == 1 and DIMENSIONS[self.dimensions[0]].rollup:
            return self.dimensions[0]
        return ROLLUP_PAIRS.get(self.dimensions)


def ask(dimensions: tuple[str, ...], start: dt.date) -> Ask:
    if len(dimensions) == 1 and dimensions[0] in TIME_BY_DAY:
        return Ask(time_column(dimensions[0], start), dimensions)
    pair = ROLLUP_PAIRS.get(dimensions)
    if pair:
        return Ask(column((pair,)), dimensions)
    return Ask(column(dimensions), dimensions)


def time_column(dim: str, start: dt.date) -> Column:
    """A time bucket as a column over ``day`` (weeks start with the range, as their labels do)."""
    if dim == "time:week":
        return Column(
            dim, f"strftime(greatest(date_trunc('week', day), DATE '{start.isoformat()}'), '%Y-%m-%d')", False
        )
    return column((dim,))


@dataclass(slots=True)
class DaySource:
    day: dt.date
    files: list[Path]  # the day's raw event files now (empty: purged)
    rollup: Path | None  # the rollup that may answer it
    built_at: float | None  # set when that rollup is one batch behind (rollup_max_stale)
    visits: Path | None  # the per-visit table built from exactly ``files``

    def missing(self, site: str) -> MissingDay:
        return MissingDay(site, self.day, tuple(str(f) for f in self.files))


class Page:
    """What the queries of one run_many call share: day listings, scopes, temp tables."""

    def __init__(self, lake: Lake, store: RollupStore, cur: Connection, max_stale: float) -> None:
        self.lake, self.store, self.cur, self.max_stale = lake, store, cur, max_stale
        self._days: dict[tuple[str, dt.date], DaySource] = {}
        self._bounds: dict[str, tuple[dt.date, dt.date] | None] = {}
        self.scopes: dict[tuple[object, ...], Scope] = {}
        self._n = 0

    def name(self, kind: str) -> str:
        self._n += 1
        return f"{kind}_{self._n}"  # identifiers made up here, never from input

    def bounds(self, site: str) -> tuple[dt.date, dt.date] | None:
        """The first and last day the lake holds for a site (ranges are clamped to them before any listing)."""
        if site not in self._bounds:
            days = self.lake.event_days(site) + self.lake.rollup_days(site)
            self._bounds[site] = (min(days), max(days)) if days else None
        return self._bounds[site]

    def day(self, site: str, day: dt.date) -> DaySource:
        key = (site, day)
        if key not in self._days:
            files = self.lake.event_files(site, day)
            rollup, built_at = current_rollup(self.lake, site, day, files), None
            if rollup is None and files and self.max_stale > 0:
                rollup, built_at = self._stale(self.lake.rollup_day_dir(site, day))
            self._days[key] = DaySource(day, files, rollup, built_at, current_visits(self.lake, site, day, files))
        return self._days[key]

    def _stale(self, directory: Path) -> tuple[Path | None, float | None]:
        # The day's previous rollup (from before its latest batch), if young enough: exact as of then.
        built = Lake.visible_parquet(directory)
        if not built:
            return None, None
        try:
            mtime = built[-1].stat().st_mtime
        except (OSError, AttributeError, NotImplementedError):  # an object store: no cheap age, stay exact
            return None, None
        if time.time() - mtime > self.max_stale:
            return None, None
        return built[-1], mtime

    def scope(self, site: str, start: dt.date, end: dt.date, filters: tuple[Expr, ...], ts: object = None) -> Scope:
        key = (site, start, end, filters, ts)
        if key not in self.scopes:
            self.scopes[key] = Scope(self, site, start, end, filters, ts)
        return self.scopes[key]


@dataclass(slots=True)
class Sums:
    """A scope's summed rows for one table: per column name, key → Agg (and the value as the SQL wrote it)."""

    groups: dict[str, dict[Key, Agg]] = field(default_factory=dict)
    values: dict[str, dict[Key, str]] = field(default_factory=dict)


class Scope:
    def __init__(
        self,
        page: Page,
        site: str,
        start: dt.date,
        end: dt.date,
        filters: tuple[Expr, ...],
        ts: tuple[dt.datetime, dt.datetime] | object,
    ) -> None:
        self.page, self.site, self.start, self.end, self.filters, self.ts = page, site, start, end, filters, ts
        bounds = page.bounds(site)
        days: list[DaySource] = []
        if bounds is not None:
            day, last = max(start, bounds[0]), min(end, bounds[1])
            while day <= last:
                days.append(page.day(site, day))
                day += dt.timedelta(days=1)
        self.days = days
        self.raw_days = [d for d in days if d.files]
        self.purged_days = [d for d in days if not d.files and d.rollup is not None]
        self.visit_level = is_visit_level_all(filters) and ts is None
        self._need: dict[Mode, dict[str, Ask]] = {"rollup": {}, "visits": {}, "rows": {}}
        self._scroll = False  # some rows-table request asks for scroll depth
        self._light = True  # every rows-table request asks only for metrics that need no visit ids
        self._sums: dict[Mode, Sums] = {}
        self._views: dict[str, str] = {}
        self._tables: dict[str, str] = {}
        self.segment_reasons: dict[str, str | None] = {}  # per table: why the filtered totals cannot be shown

    # --- the decider -------------------------------------------------------------------------------------

    def mode(self, a: Ask, scroll: bool) -> Mode:
        if not self.filters and self.ts is None and a.rollup_name is not None:
            return "rollup"
        if self.visit_level and not a.column.per_event and not scroll:
            return "visits"
        return "rows"

    def need(self, a: Ask, metrics: tuple[str, ...]) -> Mode:
        """Register a column this page asks of the scope (before any is computed); returns its table."""
        scroll = "scroll_depth" in metrics
        mode = self.mode(a, scroll)
        self._need[mode][a.column.name] = a
        if mode != "rows" or not self._event_only():
            self._need[mode].setdefault("", ask((), self.start))
        if mode == "rows":
            self._scroll |= scroll
            self._light &= set(metrics) <= LIGHT_METRICS
        return mode

    def _event_only(self) -> bool:
        """Whether the rows table answers event columns only (visit-level filters: visits answer the rest)."""
        return self.visit_level and all(
            a.dimensions and all(DIMENSIONS[d].per_event for d in a.dimensions) for a in self._need["rows"].values()
        )

    # --- sums --------------------------------------------------------------------------------------------

    def groups(self, a: Ask, mode: Mode) -> dict[Key, Agg]:
        return self._summed(mode).groups.get(a.column.name, {})

    def value_of(self, a: Ask, mode: Mode, key: Key) -> str:
        """The value of a row as the SQL wrote it (a JSON array for several dimensions)."""
        return self._summed(mode).values.get(a.column.name, {}).get(key, key[0] if key else "")

    def _summed(self, mode: Mode) -> Sums:
        if mode not in self._sums:
            self._sums[mode] = self._rollup_sums() if mode == "rollup" else self._sql_sums(mode)
        return self._sums[mode]

    def rollup_sources(
        self, a: Ask | None = None, *, raw_only: bool = False
    ) -> tuple[list[str], list[MissingDay], int]:
        """Rollup files, days to roll up in memory, and how many rollups are one batch behind.

        A rollup built before pair dimensions existed cannot answer a pair: such a day is rolled up anew
        from its raw files, or (purged) left out.
        """
        pair = a is not None and a.rollup_name in PAIRS
        files, missing, stale = [], [], 0
        for d in self.raw_days if raw_only else self.days:
            if d.rollup is not None and (not pair or rollup_format(d.rollup) >= 2):
                files.append(str(d.rollup))
                stale += d.built_at is not None
            elif d.files:
                missing.append(d.missing(self.site))
        return files, missing, stale

    def _rollup_sums(self) -> Sums:
        asks = list(self._need["rollup"].values())
        # Pairs may need other sources than the rest (older rollups cannot answer them): one sum per source list.
        by_sources: dict[tuple[tuple[str, ...], tuple[MissingDay, ...]], list[Ask]] = {}
        for a in asks:
            files, missing, _ = self.rollup_sources(a)
            by_sources.setdefault((tuple(files), tuple(missing)), []).append(a)
        out = Sums()
        for (file_set, missing_set), group in by_sources.items():
            dims = tuple(sorted({a.rollup_name for a in group if a.rollup_name}))
            rows = self.page.store.sums(list(file_set), list(missing_set), dims) if file_set or missing_set else []
            part = self._collect(group, rows, rollup=True)
            out.groups.update(part.groups)
            out.values.update(part.values)
        return out

    def purged_groups(self, a: Ask) -> dict[Key, Agg]:
        """The column's rollup rows of the days whose raw events are purged (they have nothing else)."""
        usable = self.rollup_sources(a)[0]
        files = [str(d.rollup) for d in self.purged_days if str(d.rollup) in usable]
        if not files:
            return {}
        dims = (a.rollup_name,) if a.rollup_name else ()
        return self._collect([a], self.page.store.sums(files, [], dims), rollup=True).groups[a.column.name]

    def _collect(self, asks: list[Ask], rows: list[SumRow], *, rollup: bool) -> Sums:
        out = Sums()
        for a in asks:
            name = a.rollup_name if rollup else a.column.name
            groups: dict[Key, Agg] = {}
            values: dict[Key, str] = {}
            for dimension, value, day, comps, max_daily in rows:
                if a.time_bucket or not a.dimensions:
                    if dimension or day is None:
                        continue
                    key: Key = (bucket(a.time_bucket, day, self.start),) if a.time_bucket else ()
                elif dimension == name:
                    key = tuple(json.loads(value)) if len(a.dimensions) > 1 else (value,)
                else:
                    continue
                c = Components.from_row(comps)
                if key in groups:
                    groups[key].comps.add(c)
                    groups[key].max_daily = max(groups[key].max_daily, _int(max_daily))
                else:
                    groups[key] = Agg(c, _int(max_daily))
                    values[key] = value
            out.groups[a.column.name] = groups
            out.values[a.column.name] = values
        return out

    def _sql_sums(self, mode: Mode) -> Sums:
        asks = list(self._need[mode].values())
        if not self.raw_days:
            return Sums()
        table = self.day_rows(mode)
        rows = self.page.cur.execute(sums_sql(table)).fetchall()
        return self._collect(asks, [(str(r[0]), str(r[1]), r[2], tuple(r[3:-1]), r[-1]) for r in rows], rollup=False)

    def day_rows(self, mode: Mode) -> str:
        """The temp table of this scope's day rows for every column asked of ``mode`` (computed once)."""
        key = f"day_rows:{mode}"
        if key not in self._tables:
            cols = [a.column for a in self._need[mode].values() if not a.time_bucket and a.dimensions]
            params: dict[str, object] = {}
            name = self.page.name("dr")
            if mode == "visits":
                where = Compiler(params).all(self.filters)
                visits = f"(SELECT * FROM {self.visits()} WHERE {where})"
                sql = day_rows_sql(cols, params, visits=visits, rows=None, scroll=False)
            elif self._event_only():
                rows = self.event_rows(light=self._light)
                sql = event_day_rows_sql(cols, params, rows=rows, light=self._light)
            else:
                rows = self.rows()
                sql = day_rows_sql(cols, params, visits=self.rows_visits(), rows=rows, scroll=self._scroll)
            self.page.cur.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
            self._tables[key] = name
        return self._tables[key]

    # --- relations ---------------------------------------------------------------------------------------

    def visits(self) -> str:
        """A view of the per-visit table of every raw day in range (built files, or computed in memory)."""
        if "visits" not in self._views:
            built = [d.visits for d in self.raw_days if d.visits is not None]
            missing = [d.missing(self.site) for d in self.raw_days if d.visits is None]
            parts = []
            if built:
                parts.append(f"SELECT * FROM read_parquet([{', '.join(sql_path(p) for p in built)}])")
            if missing:
                table = self.page.name("vc")
                self.page.store.copy_visits(self.page.cur, table, self.page.store.visits(missing))
                parts.append(f"SELECT * FROM {table}")
            name = self.page.name("v")
            self.page.cur.execute(f"CREATE TEMP VIEW {name} AS {' UNION ALL BY NAME '.join(parts)}")
            self._views["visits"] = name
        return self._views["visits"]

    def events(self) -> str:
        """A view of the raw events of every raw day in range."""
        if "events" not in self._views:
            files = [f for d in self.raw_days for f in d.files]
            name = self.page.name("e")
            self.page.cur.execute(
                f"CREATE TEMP VIEW {name} AS SELECT *, CAST(ts AS DATE) AS day "
                f"FROM read_parquet([{', '.join(sql_path(p) for p in files)}])"
            )
            self._views["events"] = name
        return self._views["events"]

    def joined(self) -> str:
        """A view of every event in range with its visit's columns (not filtered)."""
        if "joined" not in self._views:
            name = self.page.name("j")
            self.page.cur.execute(
                f"CREATE TEMP VIEW {name} AS SELECT * FROM {joined_rows_sql(self.events(), self.visits())}"
            )
            self._views["joined"] = name
        return self._views["joined"]

    def condition(self, params: dict[str, object]) -> str:
        """This scope's filters (and datetime bounds) as one SQL condition over events or visits."""
        cond = Compiler(params, prefix=f"c{len(params)}_").all(self.filters)
        if isinstance(self.ts, tuple):
            params["ts_from"], params["ts_to"] = (t.astimezone(dt.UTC).replace(tzinfo=None) for t in self.ts)
            cond = f"({cond}) AND ts BETWEEN $ts_from AND $ts_to"
        return cond

    def rows(self) -> str:
        """The matching events with their visits, materialized once."""
        if "rows" not in self._tables:
            self._tables["rows"] = self._matching(self._joined_matching_visits())
        return self._tables["rows"]

    def event_rows(self, *, light: bool) -> str:
        """The matching events, for event columns under visit-level filters.

        With ``light`` metrics and filters on the events' own columns only (browser, OS, device, ISP), the raw
        events hold everything: no visit is joined to them.
        """
        if "event_rows" not in self._tables:
            own = not any(leaf.dimension in VISIT_DERIVED for f in self.filters for leaf in leaves(f))
            base = self.events() if light and own else self._joined_matching_visits()
            # Only what event columns and their metrics read: a narrow table is several times faster to build.
            cols = "day, day_key, ts, name, path, engaged_ms, scroll_depth" + (
                "" if light else ", vno, is_bounce, v_dur"
            )
            self._tables["event_rows"] = self._matching(base, cols)
        return self._tables["event_rows"]

    def _matching(self, base: str, columns: str = "*") -> str:
        params: dict[str, object] = {}
        name = self.page.name("r")
        cond = self.condition(params)
        self.page.cur.execute(f"CREATE TEMP TABLE {name} AS SELECT {columns} FROM {base} WHERE {cond}", params)
        return name

    def _joined_matching_visits(self) -> str:
        """Events joined to their visits, the visits narrowed first by the filters that are about visits."""
        if self.ts is not None or not self.filters:
            return self.joined()
        params: dict[str, object] = {}
        about_visits = tuple(f for f in self.filters if is_visit_level(f))
        if not about_visits:
            return self.joined()
        where = Compiler(params, prefix="jv").all(about_visits)
        visits = self.page.name("vm")
        self.page.cur.execute(f"CREATE TEMP TABLE {visits} AS SELECT * FROM {self.visits()} WHERE {where}", params)
        return joined_rows_sql(self.events(), visits)

    def rows_visits(self) -> str:
        """The per-visit table of the matching events only (what the matching visits contribute)."""
        if "rows_visits" not in self._tables:
            name = self.page.name("rv")
            self.page.cur.execute(f"CREATE TEMP TABLE {name} AS {visits_sql(self.rows())}")
            self._tables["rows_visits"] = name
        return self._tables["rows_visits"]

    def rollup_day_rows(self, a: Ask) -> str:
        """A temp table of the rollup rows (day, dimension, value, visitors) of this scope's days for ``a``."""
        key = f"rollup_rows:{a.rollup_name}"
        if key not in self._tables:
            files, missing, _ = self.rollup_sources(a, raw_only=True)  # filtered neighbours have raw days only
            name = self.page.name("rr")
            dims = [a.rollup_name] if a.rollup_name else []
            self.page.store.copy_rows(self.page.cur, name, files, missing, dims)
            self._tables[key] = name
        return self._tables[key]


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def is_visit_level_all(filters: tuple[Expr, ...]) -> bool:
    return all(is_visit_level(f) for f in filters)


__all__ = ["TOTAL", "Ask", "DaySource", "Mode", "Page", "Scope", "ask", "ROLLUP_DIMENSIONS"]
