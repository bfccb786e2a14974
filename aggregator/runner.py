"""The runner's parts that need no database: a request's plan, and sorting and comparing its rows.

A :class:`Plan` is what :meth:`aggregator.query.Querier._plan` decides for one
request: its days, its scope and table, the scopes of its filters' neighbours,
its comparison period's plan and the plans its ratio metrics divide by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aggregator.asks import Ask
from aggregator.kanon import Key
from aggregator.metrics import RATIO_METRICS, Components, Number
from aggregator.periods import change, time_labels
from aggregator.relations import Mode
from aggregator.request import Comparison, QueryRequest, QueryResult, ResultRow, num
from aggregator.scope import Scope


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


def copy_result(result: QueryResult) -> QueryResult:
    """A copy whose lists the caller may change without changing the cached answer."""
    return replace(
        result,
        rows=list(result.rows),
        warnings=list(result.warnings),
        suppressed_buckets=list(result.suppressed_buckets),
        time_labels=list(result.time_labels),
    )


def sort_rows(
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


def compare(plan: Plan, current: QueryResult, previous: QueryResult, folded: set[Key]) -> list[ResultRow]:
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
        empty = zeros(plan.request.metrics)
        rows += [ResultRow((label,), empty) for label in moved[0] if label not in have]
    out = []
    for row in rows:
        key = tuple(moved[i].get(v, "") if i in moved else v for i, v in enumerate(row.dimensions))
        p = prev.get(key)
        if p is None and (key in folded or previous.suppressed):
            out.append(row)  # the comparison row exists but is under K there: no comparison, not a zero
            continue
        metrics = p.metrics if p is not None else zeros(plan.request.metrics)
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


def zeros(metrics: tuple[str, ...]) -> tuple[int | float, ...]:
    # A row with nothing in it converts nobody: its conversion rate is 0 (Plausible's, also over no visitors).
    return tuple(0 if m in RATIO_METRICS else Components().metric(m) for m in metrics)
