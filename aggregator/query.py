"""The query API: typed requests in, k-anonymous aggregate rows out.

Used by the dashboards, the reports and the HTTP Stats API (one parse → run →
render path, :mod:`aggregator.stats_api`). There is deliberately no way to ask
for events, visits or day keys: every answer is a set of aggregate rows, and
the rows a request may show are decided by :mod:`aggregator.kanon` (people, not
visitor-days; an exact ``(other)``; no differencing against neighbouring filters).

How a page of requests (:meth:`Querier.run_many`) is answered: each request is
*planned* — its range resolved (:mod:`aggregator.periods`), its scope (site,
days, filters) and the table that answers it decided
(:mod:`aggregator.scope`), with the scopes its comparison period and its
filters' neighbours need — then every scope computes all the columns asked of
it in one pass per table (a filtered scope with its filtered neighbours in one
pass, :mod:`aggregator.fused`), and each request's rows are decided, sorted,
paged and compared (the runner: :mod:`aggregator.answers`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from dataclasses import replace

import duckdb

from aggregator import funnels, realtime
from aggregator.answers import Answers
from aggregator.asks import ask
from aggregator.daycache import RollupStore
from aggregator.db import connect
from aggregator.dimensions import GOAL
from aggregator.filters import Expr, Filter, GoalLike, neighbours
from aggregator.funnels import MAX_STEPS, MIN_STEPS, FunnelResult
from aggregator.lake import Lake
from aggregator.metrics import RATIO_METRICS
from aggregator.page import Page
from aggregator.periods import DateRange, PeriodError, comparison_range, resolve
from aggregator.request import (
    MAX_LIMIT,
    OTHER,
    Comparison,
    CurrentVisitors,
    QueryError,
    QueryRequest,
    QueryResult,
    ResultRow,
    without_goals,
)
from aggregator.runner import Plan, copy_result
from aggregator.settings import Settings
from collector.siteconfig import Goal, SiteConfig, SiteConfigError, Watcher

#: Answers kept per querier (a page of requests each); the least recently used beyond this are dropped.
MAX_CACHED_ANSWERS = 256

log = logging.getLogger("aggregator.query")

__all__ = [
    "MAX_LIMIT",
    "OTHER",
    "Comparison",
    "CurrentVisitors",
    "Filter",
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
        # DuckDB's grouping_sets optimizer turns one GROUPING SETS aggregate into one aggregate per set over a
        # shared scan, fanned out; here that costs 1.5-2x the one aggregate feeding every set's hash table
        # (measured on the 10M-event bench lake, docs/queries.md).
        self._db.execute("SET disabled_optimizers = 'grouping_sets'")
        self.rollups = RollupStore(self._db)
        self._answers: OrderedDict[tuple[object, ...], list[QueryResult]] = OrderedDict()
        self._lock = threading.Lock()
        self._watcher: Watcher | None = None

    def close(self) -> None:
        self._db.close()

    def resolve_range(self, request: QueryRequest, now: dt.datetime) -> tuple[dt.date, dt.date]:
        days = self.lake.event_days(request.site_id) + self.lake.rollup_days(request.site_id)
        try:
            return resolve(request.date_range, now.astimezone(dt.UTC).date(), min(days) if days else None)
        except PeriodError as exc:
            raise QueryError(str(exc)) from None

    def current_visitors(self, site: str, now: dt.datetime, minutes: int = 5) -> CurrentVisitors:
        """Distinct visitors with an event in (now - minutes, now] (aggregator/realtime.py)."""
        return realtime.current_visitors(self.lake, self._db, self.settings.k_anonymity, site, now, minutes)

    def run(self, request: QueryRequest, now: dt.datetime, *, max_stale: float | None = None) -> QueryResult:
        return self.run_many([request], now, max_stale=max_stale)[0]

    def run_many(
        self, requests: list[QueryRequest], now: dt.datetime, *, max_stale: float | None = None
    ) -> list[QueryResult]:
        """Several queries at once (a dashboard page): days are listed and every table read once.

        ``max_stale``: seconds a day's previous rollup may answer after new events landed in that day
        (default: the ``rollup_max_stale`` setting; 0: exact).
        """
        stale_limit = self.settings.rollup_max_stale if max_stale is None else max_stale
        for request in requests:
            request.validate()
        today = now.astimezone(dt.UTC).date()
        for attempt in range(4):
            cur = self._db.cursor()
            try:
                page = Page(self.lake, self.rollups, cur, stale_limit, self.goals)
                plans = [self._plan(page, r, today) for r in requests]
                # The lake's files are immutable and named after their content: the same questions over the same
                # files (and goals) have the same answers (a dashboard reloaded, or the next request of the page).
                key = (tuple(requests), today, stale_limit, page.snapshot(), self.config().revision)
                with self._lock:
                    cached = self._answers.get(key)
                    if cached is not None:
                        self._answers.move_to_end(key)
                if cached is None:
                    answers = Answers(self.settings)
                    cached = [answers.answer(plan) for plan in plans]
                    with self._lock:
                        self._answers[key] = cached
                        while len(self._answers) > MAX_CACHED_ANSWERS:
                            self._answers.popitem(last=False)
                return [copy_result(r) for r in cached]
            except duckdb.IOException:
                # A file of our snapshot was compacted or purged meanwhile: list again.
                if attempt == 3:
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")

    # --- planning ----------------------------------------------------------------------------------------

    def _plan(
        self, page: Page, request: QueryRequest, today: dt.date, period: tuple[dt.date, dt.date] | None = None
    ) -> Plan:
        bounds = page.bounds(request.site_id)
        try:
            start, end = period or resolve(request.date_range, today, bounds[0] if bounds else None)
        except PeriodError as exc:
            raise QueryError(str(exc)) from None
        ts = request.date_range if isinstance(request.date_range, tuple) and isinstance(
            request.date_range[0], dt.datetime
        ) and period is None else None  # fmt: skip
        self._check_goals(request)
        a = ask(request.dimensions, start)
        total = ask((), start)
        metrics = request.metrics
        scope = page.scope(request.site_id, start, end, request.filters, ts)
        plan = Plan(request, start, end, a, scope, scope.need(a, metrics), scope.need(total, ("visitors",)))
        if request.filters:
            for g in neighbours(request.filters):
                # a neighbour is compared by its visitors only (aggregator/probe.py ScopeProbe.diffs)
                other = page.scope(request.site_id, start, end, g, ts)
                plan.neighbours.append((other, other.need(a, ("visitors",)), other.need(total, ("visitors",))))
                scope.add_neighbour(other, plan.neighbours[-1][1])
        for m in RATIO_METRICS & set(metrics):
            dims = tuple(d for d in request.dimensions if d != GOAL) if m == "group_conversion_rate" else ()
            # A percentage divides by the same question's total (every filter kept, Plausible's); a conversion
            # rate by the visitors without the goal and property filters.
            filters = request.filters if m == "percentage" else without_goals(request.filters)
            base = replace(request, metrics=("visitors",), dimensions=dims, filters=filters,
                           order_by=(), limit=MAX_LIMIT, offset=0, comparison=None, comparison_range=None,
                           total_rows=False, time_labels=False)  # fmt: skip
            plan.ratios[m] = self._plan(page, base, today, (start, end) if period or ts is None else None)
        if request.comparison is not None and period is None:
            if ts is not None:
                raise QueryError("comparisons need a date_range of whole days")
            try:
                c_start, c_end = comparison_range(
                    request.comparison,
                    start,
                    end,
                    today,
                    custom=request.comparison_range,
                    match_day_of_week=request.match_day_of_week,
                )
            except PeriodError as exc:
                raise QueryError(str(exc)) from None
            whole = replace(request, limit=MAX_LIMIT, offset=0)
            plan.comparison = self._plan(page, whole, today, (c_start, c_end))
        return plan

    def goals(self, site: str) -> tuple[Goal, ...]:
        """The site's goals, from the site configuration in force (re-read when its file changes)."""
        found = self.config().site(site)
        return found.goals if found is not None else ()

    def config(self) -> SiteConfig:
        with self._lock:
            if self._watcher is None:
                try:
                    self._watcher = Watcher(self.settings.site_config_path)
                except SiteConfigError as exc:  # a broken file at start: no goals until it is fixed
                    log.warning("site configuration: %s", exc)
                    self._watcher = Watcher(self.settings.site_config_path.with_name(".missing"))
            self._watcher.check()
            return self._watcher.current

    def _check_goals(self, request: QueryRequest) -> None:
        names = {g.name for g in self.goals(request.site_id)}
        for f in request.filters:
            if isinstance(f, Filter) and f.dimension == GOAL and f.op == "is":
                for v in f.values:
                    if v not in names and (f.case_sensitive or v.lower() not in {n.lower() for n in names}):
                        raise QueryError(
                            f"Invalid filters. The goal `{v}` is not configured for this site. Define it in the "
                            "site configuration (docs/goals.md)."
                        )

    def funnel(
        self,
        site: str,
        date_range: DateRange,
        steps: tuple[str, ...],
        now: dt.datetime,
        filters: tuple[Expr, ...] = (),
    ) -> FunnelResult:
        """Visitors through ``steps`` (goal names of the site, in order) within a visit; see aggregator/funnels.py."""
        probe = QueryRequest(site, ("visitors",), date_range, (), filters)
        probe.validate()
        goals = {g.name: g for g in self.goals(site)}
        if not MIN_STEPS <= len(steps) <= MAX_STEPS:
            raise QueryError(f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps")
        for name in steps:
            if name not in goals:
                raise QueryError(f"funnel step `{name}` is not a goal of this site (docs/goals.md)")
        self._check_goals(probe)
        today = now.astimezone(dt.UTC).date()
        for attempt in range(4):
            cur = self._db.cursor()
            try:
                page = Page(self.lake, self.rollups, cur, 0.0, self.goals)
                chosen: list[GoalLike] = [goals[n] for n in steps]
                return funnels.answer(page, site, date_range, chosen, filters, today, self.settings.k_anonymity)
            except duckdb.IOException:
                if attempt == 3:
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")
