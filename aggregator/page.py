"""A page of queries (one ``Querier.run_many`` call): the day listings, scopes and temp tables they share."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from duckdb import DuckDBPyConnection as Connection

from aggregator.asks import DaySource
from aggregator.daycache import RollupStore
from aggregator.filters import Expr, GoalLike
from aggregator.lake import Lake
from aggregator.rollup import current_rollup, current_tables
from aggregator.scope import Scope
from aggregator.tables import Tables


class Page:
    """What the queries of one run_many call share: day listings, scopes, temp tables."""

    def __init__(
        self,
        lake: Lake,
        store: RollupStore,
        cur: Connection,
        max_stale: float,
        goals: Callable[[str], tuple[GoalLike, ...]] = lambda site: (),
    ) -> None:
        self.lake, self.store, self.cur, self.max_stale = lake, store, cur, max_stale
        self.goals = goals
        self._days: dict[tuple[str, dt.date], DaySource] = {}
        self._bounds: dict[str, tuple[dt.date, dt.date] | None] = {}
        self.scopes: dict[tuple[object, ...], Scope] = {}
        self.coded: dict[tuple[object, ...], Tables] = {}  # coded tables by (site, raw days, datetime bounds)
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
            self._days[key] = DaySource(day, files, rollup, built_at, current_tables(self.lake, site, day, files))
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

    def snapshot(self) -> tuple[object, ...]:
        """What the page's answers depend on: every day it listed, by the names of its files (content-named)."""
        return tuple(
            (site, d.day, tuple(f.name for f in d.files), str(d.rollup), d.built_at,
             tuple(sorted(str(p) for p in (d.tables or {}).values())))
            for (site, _), d in sorted(self._days.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        )  # fmt: skip

    def scope(self, site: str, start: dt.date, end: dt.date, filters: tuple[Expr, ...], ts: object = None) -> Scope:
        key = (site, start, end, filters, ts)
        if key not in self.scopes:
            self.scopes[key] = Scope(self, site, start, end, filters, ts)
        return self.scopes[key]
