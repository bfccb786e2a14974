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
it in one pass per table, and each request's rows are decided, sorted, paged
and compared (the runner, below).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import duckdb

from aggregator import funnels
from aggregator.daycache import RollupStore
from aggregator.db import connect
from aggregator.dimensions import GOAL
from aggregator.filters import Expr, Filter, GoalLike, neighbours
from aggregator.funnels import MAX_STEPS, MIN_STEPS, FunnelResult, per_step
from aggregator.kanon import Agg, Key, decide, segment_ok, smallest_first
from aggregator.lake import Lake
from aggregator.metrics import RATIO_METRICS, Components, Number
from aggregator.periods import DateRange, PeriodError, change, comparison_range, resolve, time_labels
from aggregator.probe import ScopeProbe
from aggregator.request import (
    MAX_LIMIT,
    OTHER,
    Comparison,
    CurrentVisitors,
    QueryError,
    QueryRequest,
    QueryResult,
    ResultRow,
    num,
    without_goals,
)
from aggregator.scope import Ask, Mode, Page, Scope, ask
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


@dataclass(slots=True)
class Plan:
    request: QueryRequest
    start: dt.date
    end: dt.date
    ask: Ask
    scope: Scope
    mode: Mode
    total_mode: Mode
    neighbours: list[tuple[Scope, Mode, Mode]] = field(default_factory=list)  # scope, its mode, its totals' mode
    comparison: Plan | None = None
    #: What conversion rates divide by (the same question without goal and property filters), by metric.
    ratios: dict[str, Plan] = field(default_factory=dict)
    bases: dict[str, dict[Key, int]] = field(default_factory=dict)


class Querier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_dir)
        self._db = connect(settings)
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
                    cached = [self._answer(plan) for plan in plans]
                    with self._lock:
                        self._answers[key] = cached
                        while len(self._answers) > MAX_CACHED_ANSWERS:
                            self._answers.popitem(last=False)
                return [_copy(r) for r in cached]
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
                bounds = page.bounds(site)
                try:
                    start, end = resolve(date_range, today, bounds[0] if bounds else None)
                except PeriodError as exc:
                    raise QueryError(str(exc)) from None
                chosen: list[GoalLike] = [goals[n] for n in steps]
                scope = page.scope(site, start, end, filters)
                counts = per_step(scope, chosen)
                others = [per_step(page.scope(site, start, end, g), chosen) for g in neighbours(filters)]
                k = self.settings.k_anonymity
                result = FunnelResult(site, start, end, funnels.decide(list(steps), counts, others, k), k)
                if scope.purged_days:
                    result.warnings.append(
                        f"{len(scope.purged_days)} day(s) in range have only daily aggregates left: funnels cannot "
                        "use them"
                    )
                return result
            except duckdb.IOException:
                if attempt == 3:
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")

    # --- running -----------------------------------------------------------------------------------------

    def _answer(self, plan: Plan) -> QueryResult:
        result, _ = self._rows(plan)
        if plan.comparison is not None:
            previous, folded = self._rows(plan.comparison)
            result.comparison_range = (plan.comparison.start, plan.comparison.end)
            result.rows = _compare(plan, result, previous, folded)
            result.warnings = list(dict.fromkeys(result.warnings + previous.warnings))
        return result

    def _rows(self, plan: Plan) -> tuple[QueryResult, set[Key]]:
        """The request's shown rows (sorted, paged) and the keys it had to fold."""
        request, scope, k = plan.request, plan.scope, self.settings.k_anonymity
        result = QueryResult(request, plan.start, plan.end, [], 0, k)
        self._describe(plan, result)
        groups = scope.groups(plan.ask, plan.mode)
        dims = request.dimensions
        if request.filters:
            reason = self._segment(plan)
            if reason is not None:
                result.suppressed = reason
                return result, set(groups)
        if not dims:
            total = groups.get((), Agg(Components(), 0))
            result.rows = [ResultRow((), self._values(plan, (), total.comps))]
            result.total_rows = 1
            return result, set()
        exempt = not request.filters and all(d.startswith("time:") for d in dims)
        series = len(dims) == 1 and dims[0].startswith("time:")
        shown: list[tuple[Key, Components]]
        folded: list[Key] = []
        other_row: tuple[Key, Components] | None = None
        if exempt:  # a site's unfiltered time series
            shown = [(key, agg.comps) for key, agg in groups.items()]
        else:
            scroll = "scroll_depth" in request.metrics
            probe = ScopeProbe(scope, plan.ask, plan.mode, [(s, m) for s, m, _ in plan.neighbours], scroll)
            decision = decide(groups, k, probe, smallest_first(groups))
            shown = [(key, groups[key].comps) for key in decision.shown]
            folded = decision.folded
            result.folded_rows = len(folded)
            if series:  # a filtered time series: buckets under K are left out, never named "(other)"
                result.suppressed_buckets = sorted(key[0] for key in folded)
            elif decision.other is not None:
                other_row = ((OTHER,) * len(dims), decision.other.comps)
            else:
                result.other_suppressed = bool(folded)
        _sort(request, shown, lambda key, comps, m: self._values(plan, key, comps)[request.metrics.index(m)])
        if other_row is not None:
            shown.append(other_row)  # (other) comes last, after the sorted rows
        result.total_rows = len(shown)
        window = shown[request.offset : request.offset + request.limit]
        result.rows = [ResultRow(key, self._values(plan, key, c)) for key, c in window]
        return result, set(folded)

    def _values(self, plan: Plan, key: Key, comps: Components) -> tuple[Number | None, ...]:
        """A row's metrics; a conversion rate is its visitors over the same question's without goal filters."""
        out: list[Number | None] = []
        for m in plan.request.metrics:
            if m not in RATIO_METRICS:
                out.append(comps.metric(m))
                continue
            base = self._bases(plan, m)
            dims = plan.request.dimensions
            sub = tuple(v for d, v in zip(dims, key, strict=False) if d != GOAL) if m == "group_conversion_rate" else ()
            if OTHER in key:
                sub = () if m != "group_conversion_rate" else ("\0",)  # (other) has no group to divide by
            denominator = base.get(sub)
            if m == "percentage":  # of the total, one decimal; none of nobody (Plausible's null)
                out.append(round(100 * comps.visitors / denominator, 1) if denominator else None)
                continue
            out.append(
                None if denominator is None else (round(100 * comps.visitors / denominator, 2) if denominator else 0)
            )
        return tuple(out)

    def _bases(self, plan: Plan, metric: str) -> dict[Key, int]:
        """Visitors of the question a conversion rate divides by, per group; only what its own rules show."""
        if metric not in plan.bases:
            sub = plan.ratios[metric]
            result, _ = self._rows(sub)
            plan.bases[metric] = (
                {} if result.suppressed else {r.dimensions: int(r.metrics[0] or 0) for r in result.rows}
            )
        return plan.bases[metric]

    def _segment(self, plan: Plan) -> str | None:
        """Why a filtered scope cannot be shown (its totals fail the rules), or None; once per scope."""
        scope = plan.scope
        key = plan.total_mode
        cache = scope.segment_reasons
        if key not in cache:
            total = ask((), plan.start)
            groups = scope.groups(total, plan.total_mode)
            agg = groups.get((), Agg(Components(), 0))
            probe = ScopeProbe(scope, total, plan.total_mode, [(s, tm) for s, _, tm in plan.neighbours], False)
            cache[key] = segment_ok(self.settings.k_anonymity, agg, probe)
        return cache[key]

    def _describe(self, plan: Plan, result: QueryResult) -> None:
        """Where the answer came from: rollup or raw days, stale rollups, purged days, time labels."""
        scope = plan.scope
        if plan.mode == "rollup":
            files, missing, stale = scope.rollup_sources(plan.ask)
            result.rollup_days, result.raw_days = len(files), len(missing)
            built = [d.built_at for d in scope.days if d.built_at is not None]
            if stale and built:
                result.stale_as_of = dt.datetime.fromtimestamp(min(built), dt.UTC)
            unusable = [d for d in scope.purged_days if str(d.rollup) not in files]
            if unusable:
                result.warnings.append(
                    f"{len(unusable)} day(s) in range have only daily aggregates left (raw events purged after "
                    f"{self.settings.raw_retention_days} days), older than this breakdown: it cannot use them"
                )
        else:
            result.raw_days = len(scope.raw_days)
            if scope.purged_days:
                result.warnings.append(
                    f"{len(scope.purged_days)} day(s) in range have only daily aggregates left (raw events purged "
                    f"after {self.settings.raw_retention_days} days): filters and this breakdown cannot use them"
                )
        if plan.request.time_labels:
            dim = next(d for d in plan.request.dimensions if d.startswith("time:"))
            result.time_labels = time_labels(dim, plan.start, plan.end)


def _copy(result: QueryResult) -> QueryResult:
    """A copy whose lists the caller may change without changing the cached answer."""
    return replace(
        result,
        rows=list(result.rows),
        warnings=list(result.warnings),
        suppressed_buckets=list(result.suppressed_buckets),
        time_labels=list(result.time_labels),
    )


def _sort(
    request: QueryRequest,
    rows: list[tuple[Key, Components]],
    ratio: Callable[[Key, Components, str], Number | None],
) -> None:
    """Rows in the requested order; ``ratio`` gives a row's conversion rate or percentage (another answer's)."""
    rows.sort(key=lambda r: r[0])  # ties: dimension values ascending
    order = list(request.order_by)
    if not order:
        time_dims = [d for d in request.dimensions if d.startswith("time:")]
        order = [(d, "asc") for d in time_dims] or [(request.metrics[0], "desc")]
    for key, direction in reversed(order):
        if key in request.dimensions:
            i = request.dimensions.index(key)
            rows.sort(key=lambda r: r[0][i], reverse=direction == "desc")
        elif key in RATIO_METRICS:
            rows.sort(key=lambda r: num(ratio(r[0], r[1], key)), reverse=direction == "desc")
        else:
            rows.sort(key=lambda r: r[1].metric(key), reverse=direction == "desc")


def _compare(plan: Plan, current: QueryResult, previous: QueryResult, folded: set[Key]) -> list[ResultRow]:
    """Pair each row with the comparison period's: by value, and time buckets by their position in the period."""
    assert plan.comparison is not None
    dims = plan.request.dimensions
    moved: dict[int, dict[str, str]] = {}
    for i, d in enumerate(dims):
        if d.startswith("time:"):
            main = time_labels(d, plan.start, plan.end)
            other = time_labels(d, plan.comparison.start, plan.comparison.end)
            moved[i] = dict(zip(main, other, strict=False))
    prev = {r.dimensions: r for r in previous.rows}
    prev_visits = _visits_of(previous)
    rows = list(current.rows)
    if len(dims) == 1 and 0 in moved and current.suppressed is None:
        # A time series compared with another period: every bucket of the range gets a row (Plausible appends
        # the empty ones after the others), so each is compared; buckets left out under K stay out.
        have = {r.dimensions[0] for r in rows} | set(current.suppressed_buckets)
        zeros = _zeros(plan.request.metrics)
        rows += [ResultRow((label,), zeros) for label in moved[0] if label not in have]
    out = []
    for row in rows:
        key = tuple(moved[i].get(v, "") if i in moved else v for i, v in enumerate(row.dimensions))
        p = prev.get(key)
        if p is None and (key in folded or previous.suppressed):
            out.append(row)  # the comparison row exists but is under K there: no comparison, not a zero
            continue
        metrics = p.metrics if p is not None else _zeros(plan.request.metrics)
        changes = tuple(
            change(m, c, pv, prev_visits.get(key, 0) if p is not None else 0)
            for m, c, pv in zip(plan.request.metrics, row.metrics, metrics, strict=True)
        )
        out.append(ResultRow(row.dimensions, row.metrics, Comparison(key, metrics, changes)))
    return out


def _visits_of(result: QueryResult) -> dict[Key, int]:
    if "visits" not in result.request.metrics:
        return {r.dimensions: 1 for r in result.rows}  # unknown: assume the row had visits
    i = result.request.metrics.index("visits")
    return {r.dimensions: int(num(r.metrics[i])) for r in result.rows}


def _zeros(metrics: tuple[str, ...]) -> tuple[int | float, ...]:
    # A row with nothing in it converts nobody: its conversion rate is 0 (Plausible's, also over no visitors).
    return tuple(0 if m in RATIO_METRICS else Components().metric(m) for m in metrics)
