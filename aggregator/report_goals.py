"""The nightly report's conversions: each goal's conversions with their change, and each funnel's steps.

Filled only through the query API, like the rest of the report: one
``event:goal`` breakdown per comparison (unique conversions = converting
visitors, total conversions = the goal's events, conversion rate = of all the
site's visitors), asked in the report's own batch, so every change is the
query layer's (:func:`aggregator.periods.change`: whole percent, the
conversion rate in percentage points) against the same comparison periods as
the KPIs. Goals under K people fold into ``(other)`` like any row; a funnel's
steps are :meth:`Querier.funnel`'s, where a step under K (and every step
after it) is None: "fewer than K", never a number. A site without goals has
no section, and one without funnels no funnel summary.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregator.funnels import FunnelStep
from aggregator.metrics import GOAL_METRICS, Number
from aggregator.query import OTHER, Querier, QueryRequest, QueryResult

GOAL_HEADINGS = {"visitors": "unique", "events": "total", "conversion_rate": "CR"}


@dataclass(frozen=True, slots=True)
class GoalRow:
    name: str  # the goal's display name, or (other)
    values: tuple[Number | None, ...]  # GOAL_METRICS; a conversion rate is None for (other)
    previous: dict[str, tuple[Number | None, ...] | None]  # by comparison key; None: not shown there (under K)
    change: dict[str, tuple[Number | None, ...] | None]

    @property
    def is_other(self) -> bool:
        return self.name == OTHER


@dataclass(frozen=True, slots=True)
class GoalSection:
    rows: tuple[GoalRow, ...]  # every goal with a conversion shown, most converting first, (other) last
    goals: int  # goals configured for the site
    folded_rows: int
    other_suppressed: bool


@dataclass(frozen=True, slots=True)
class FunnelSummary:
    name: str
    steps: tuple[FunnelStep, ...]


def goal_request(site: str, start: dt.date, end: dt.date, match_day_of_week: bool) -> QueryRequest:
    return QueryRequest(
        site,
        GOAL_METRICS,
        (start, end),
        ("event:goal",),
        comparison="previous_period",
        match_day_of_week=match_day_of_week,
    )


def goal_section(results: list[QueryResult], keys: list[str], has_visits: dict[str, bool], goals: int) -> GoalSection:
    """The rows of the first comparison's answer, each with every comparison's value and change.

    ``has_visits``: by comparison key, whether that period had any visits (none: no change, as for the KPIs).
    """
    first = results[0]
    by_key = [{r.dimensions: r for r in res.rows} for res in results]
    rows = []
    for r in first.rows:
        previous: dict[str, tuple[Number | None, ...] | None] = {}
        changes: dict[str, tuple[Number | None, ...] | None] = {}
        for key, rows_of in zip(keys, by_key, strict=True):
            comp = rows_of.get(r.dimensions, r).comparison
            previous[key] = comp.metrics if comp is not None else None
            changes[key] = comp.change if comp is not None and has_visits[key] else None
        rows.append(GoalRow(str(r.dimensions[0]), r.metrics, previous, changes))
    ordered = tuple(x for x in rows if not x.is_other) + tuple(x for x in rows if x.is_other)
    return GoalSection(ordered, goals, first.folded_rows, first.other_suppressed)


def funnel_summaries(
    querier: Querier, site: str, start: dt.date, end: dt.date, now: dt.datetime
) -> tuple[FunnelSummary, ...]:
    config = querier.config().site(site)
    if config is None:
        return ()
    return tuple(
        FunnelSummary(f.name, tuple(querier.funnel(site, (start, end), f.steps, now).steps)) for f in config.funnels
    )
