"""The runner's database part: a planned request's rows decided under the privacy rules, paged and compared.

Split out of :mod:`aggregator.query` (which plans; :mod:`aggregator.runner` holds the parts that need no
database): each request's rows are read from its scope, decided by :mod:`aggregator.kanon` (people, the
exact ``(other)``, the neighbours), sorted, paged and compared with its comparison period.
"""

from __future__ import annotations

import datetime as dt

from aggregator.asks import ask
from aggregator.dimensions import GOAL
from aggregator.kanon import Agg, Key, decide, segment_ok, smallest_first
from aggregator.metrics import RATIO_METRICS, Components, Number
from aggregator.periods import time_labels
from aggregator.probe import ScopeProbe
from aggregator.request import OTHER, QueryResult, ResultRow
from aggregator.runner import Plan, compare, sort_rows
from aggregator.settings import Settings


class Answers:
    """Answers the plans of one page (K and the retention from the settings)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def answer(self, plan: Plan) -> QueryResult:
        result, _ = self._rows(plan)
        if plan.comparison is not None:
            previous, folded = self._rows(plan.comparison)
            result.comparison_range = (plan.comparison.start, plan.comparison.end)
            result.rows = compare(plan, result, previous, folded)
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
        sort_rows(request, shown, lambda key, comps, m: self._values(plan, key, comps)[request.metrics.index(m)])
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
