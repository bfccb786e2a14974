"""The overview's KPI cards: the range's totals, each with the comparison period's value and the change.

Under a goal filter the cards are Plausible's: unique conversions (the
converting visitors), total conversions (the goal's events) and the conversion
rate (of the visitors of the same view without the goal filter). Whether the
comparison period can carry a change is decided on the visits of that view
without goal filters: a period where visitors came but nobody converted is a
real 0, not "no data".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregator import fmt
from aggregator.metrics import GOAL_METRICS, KPI_METRICS, Number
from aggregator.query import MAX_LIMIT, QueryRequest, QueryResult
from aggregator.request import allowed_metrics, num, without_goals
from dashboards.viewstate import CHART_METRICS, COMPARISONS, ViewState

METRIC_LABELS: dict[str, str] = {
    **CHART_METRICS,
    "events": "Events",
    "scroll_depth": "Scroll depth",
    "conversion_rate": "Conversion rate",
    "group_conversion_rate": "Conversion rate",
}
#: What the cards say under a goal filter: every count is of conversions.
GOAL_LABELS: dict[str, str] = {"visitors": "Unique conversions", "events": "Total conversions"}
LOWER_IS_BETTER = frozenset({"bounce_rate"})
NO_DATA = "no data to compare"
PARTIAL = "comparison only partly covered"


def request(
    site: str,
    metrics: tuple[str, ...],
    state: ViewState,
    dimensions: tuple[str, ...] = (),
    limit: int = MAX_LIMIT,
    *,
    compare: bool = False,
) -> QueryRequest:
    """The view's question: its range, filters and (with ``compare``) comparison."""
    mode = state.comparison if compare else None
    return QueryRequest(
        site_id=site,
        metrics=metrics,
        date_range=(state.start, state.end),
        dimensions=dimensions,
        filters=state.query_filters(),
        limit=limit,
        total_rows=True,
        comparison=mode,
        comparison_range=state.compare_range if mode == "custom" else None,
        match_day_of_week=state.match if mode is not None else False,
    )


def kpi_request(site: str, state: ViewState) -> QueryRequest:
    if state.goal_filtered:
        return request(site, GOAL_METRICS, state, compare=True)
    # Metrics the query layer refuses under these filters (views per visit under a page filter) are left out.
    allowed = allowed_metrics((), state.query_filters())
    return request(site, tuple(m for m in KPI_METRICS if m in allowed), state, compare=True)


def base_request(site: str, state: ViewState) -> QueryRequest | None:
    """Under a goal filter: the visits of the view without it, whose comparison row says if a change is shown."""
    if not state.goal_filtered:
        return None
    asked = request(site, ("visits",), state, compare=True)
    return QueryRequest(
        site, ("visits",), asked.date_range, (), without_goals(asked.filters), total_rows=True,
        comparison=asked.comparison, comparison_range=asked.comparison_range,
        match_day_of_week=asked.match_day_of_week,
    )  # fmt: skip


def labels(state: ViewState) -> dict[str, str]:
    return {**METRIC_LABELS, **GOAL_LABELS} if state.goal_filtered else METRIC_LABELS


@dataclass(frozen=True, slots=True)
class Compared:
    """The comparison period as the query layer ran it, and whether it can carry a change."""

    label: str
    start: dt.date
    end: dt.date
    visits: int
    data_from: dt.date | None  # the site's first day of data

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def covered_days(self) -> int:
        if self.data_from is None or self.data_from > self.end:
            return 0
        return (self.end - max(self.start, self.data_from)).days + 1

    @property
    def status(self) -> str:
        """``ok``; ``empty`` (no visits: no change); ``partial`` (data began inside it: no change either)."""
        if not self.visits:
            return "empty"
        return "partial" if self.covered_days < self.days else "ok"


@dataclass(frozen=True, slots=True)
class Kpi:
    name: str
    label: str
    value: Number
    previous: Number | None
    change: Number | None
    compared: Compared | None = None

    @property
    def display(self) -> str:
        return fmt.metric(self.name, self.value)

    @property
    def previous_display(self) -> str:
        return fmt.metric(self.name, self.previous)

    @property
    def change_display(self) -> str:
        if self.compared is None:
            return ""
        if self.compared.status == "empty":
            return NO_DATA
        if self.compared.status == "partial":
            return PARTIAL
        return fmt.change(self.name, self.change)

    @property
    def tone(self) -> str:
        if self.compared is None or self.compared.status != "ok" or not self.change:
            return "flat"
        return "good" if (self.change > 0) != (self.name in LOWER_IS_BETTER) else "bad"


def compared(result: QueryResult, state: ViewState, data_from: dt.date | None) -> Compared | None:
    """The comparison period of a result that has ``visits`` among its metrics (the KPIs', or the base's)."""
    if result.comparison_range is None or not result.rows:
        return None
    comp = result.rows[0].comparison
    visits = int(num(comp.metrics[result.request.metrics.index("visits")])) if comp is not None else 0
    start, end = result.comparison_range
    return Compared(COMPARISONS[state.compare], start, end, visits, data_from)


def kpis(result: QueryResult, info: Compared | None, names: dict[str, str] = METRIC_LABELS) -> list[Kpi]:
    """The range's totals, each with the comparison period's value and the query layer's change."""
    if result.suppressed or not result.rows:
        return []
    row = result.rows[0]
    out = []
    for i, name in enumerate(result.request.metrics):
        comp = row.comparison
        previous = comp.metrics[i] if comp is not None else None
        change = comp.change[i] if comp is not None else None
        out.append(Kpi(name, names[name], num(row.metrics[i]), previous, change, info))
    return out
