"""The query API's typed request and result objects, and the error it raises.

A request names only aggregate things (metrics, dimensions, filters on
dimensions); there is no field through which events or day keys could be asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from aggregator.dimensions import GOAL, PROPS, is_public
from aggregator.filters import Expr, Filter, FilterError, leaves, neighbours, validate
from aggregator.metrics import METRICS, Number
from aggregator.periods import COMPARISONS, DATE_RANGES, ComparisonMode, DateRange, PeriodError, check_range, is_named
from collector.schema import OTHER_VALUE

#: The row that k-anonymity folds small rows into: the same word as a property value folded at ingest
#: (collector.schema.OTHER_VALUE), one definition, so that a page shows one "(other)".
OTHER = OTHER_VALUE
MAX_LIMIT = 10_000
#: Filter sets one step away from a request's filters that the differencing check runs (aggregator/kanon.py).
MAX_NEIGHBOURS = 16

#: Metrics of a visit as a whole, and of events alone; dimensions only a visit has (Plausible's table rules).
SESSION_METRICS = ("bounce_rate", "visit_duration", "views_per_visit")
EVENT_METRICS = ("pageviews", "events", "scroll_depth")
SESSION_DIMENSIONS = ("visit:entry_page", "visit:exit_page")


class QueryError(ValueError):
    """The request names something unknown or is malformed; the HTTP layer answers 400."""


@dataclass(frozen=True, slots=True)
class QueryRequest:
    site_id: str
    metrics: tuple[str, ...]
    date_range: DateRange = "30d"
    dimensions: tuple[str, ...] = ()
    filters: tuple[Expr, ...] = ()  # all must hold
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = MAX_LIMIT
    offset: int = 0
    total_rows: bool = False
    comparison: ComparisonMode | None = None
    #: For ``comparison="custom"``: the period to compare with.
    comparison_range: tuple[dt.date, dt.date] | None = None
    #: Compare with the period shifted to the same weekdays (previous_period / year_over_year).
    match_day_of_week: bool = False
    #: Every time bucket of the range in the answer's meta (Plausible's include.time_labels).
    time_labels: bool = False

    def _plausible_rules(self) -> None:
        """Combinations Plausible's Stats API refuses, refused with its messages."""
        dims, metrics = self.dimensions, self.metrics
        if "views_per_visit" in metrics and dims:
            raise QueryError("Metric `views_per_visit` cannot be queried with `dimensions`.")
        if "views_per_visit" in metrics and any(f.dimension == "event:page" for e in self.filters for f in leaves(e)):
            raise QueryError("Metric `views_per_visit` cannot be queried with a filter on `event:page`.")
        event_dims = [d for d in dims if d.startswith("event:")]
        session = [m for m in metrics if m in SESSION_METRICS]
        if session and event_dims and event_dims != ["event:page"]:
            raise QueryError(
                f"Session metric(s) {_names(session)} cannot be queried along with event dimension(s) "
                f"{_names(event_dims)}"
            )
        event_only = [m for m in metrics if m in EVENT_METRICS]
        session_dims = [d for d in dims if d in SESSION_DIMENSIONS]
        if event_only and session_dims:
            raise QueryError(
                f"Event metric(s) {_names(event_only)} cannot be queried along with session dimension(s) "
                f"{_names(session_dims)}"
            )
        goal_filter = any(isinstance(f, Filter) and f.dimension == GOAL for f in self.filters)
        for m in ("conversion_rate", "group_conversion_rate"):
            if m in metrics and GOAL not in dims and not goal_filter:
                raise QueryError(f"Metric `{m}` can only be queried with event:goal filters or dimensions.")
        if self.time_labels and not any(d.startswith("time:") for d in dims):
            raise QueryError("Invalid include.time_labels: requires a time dimension.")

    def validate(self) -> None:
        if not self.site_id:
            raise QueryError("site_id is required")
        if not self.metrics:
            raise QueryError("at least one metric is required")
        for m in self.metrics:
            if m not in METRICS:
                raise QueryError(f"unknown metric {m!r}")
        if len(set(self.metrics)) != len(self.metrics):
            raise QueryError("a metric is listed twice")
        for d in self.dimensions:
            if not is_public(d):
                raise QueryError(f"unknown dimension {d!r}")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise QueryError("a dimension is listed twice")
        try:
            validate(self.filters)
        except FilterError as exc:
            raise QueryError(str(exc)) from None
        if len(neighbours(self.filters)) > MAX_NEIGHBOURS:
            raise QueryError(
                f"filters: too many conditions and values (at most {MAX_NEIGHBOURS} in all: every one is "
                "checked so that no difference of two answers reveals a small group)"
            )
        self._plausible_rules()
        for key, direction in self.order_by:
            if key not in self.metrics and key not in self.dimensions:
                raise QueryError(f"order_by {key!r} is neither a requested metric nor a dimension")
            if direction not in ("asc", "desc"):
                raise QueryError(f"order_by direction must be asc or desc, not {direction!r}")
        if isinstance(self.date_range, str) and not is_named(self.date_range):
            raise QueryError(f"unknown date_range {self.date_range!r} (one of {', '.join(DATE_RANGES)})")
        try:
            if not isinstance(self.date_range, str):
                check_range(self.date_range)
            if self.comparison_range is not None:
                check_range(self.comparison_range)
        except PeriodError as exc:
            raise QueryError(str(exc)) from None
        if not 1 <= self.limit <= MAX_LIMIT or self.offset < 0:
            raise QueryError(f"pagination: limit must be 1..{MAX_LIMIT}, offset >= 0")
        if self.comparison is not None and self.comparison not in COMPARISONS:
            raise QueryError(f"unknown comparison {self.comparison!r}")
        if (self.comparison == "custom") != (self.comparison_range is not None):
            raise QueryError("a custom comparison needs its date_range (and only it has one)")


def without_goals(filters: tuple[Expr, ...]) -> tuple[Expr, ...]:
    """The filters a conversion rate divides by: the top-level goal and custom property ones removed."""
    return tuple(
        f for f in filters if not (isinstance(f, Filter) and (f.dimension == GOAL or f.dimension.startswith(PROPS)))
    )


def allowed_metrics(dimensions: tuple[str, ...] = (), filters: tuple[Expr, ...] = ()) -> tuple[str, ...]:
    """The metrics a request with these dimensions and filters may ask for (Plausible refuses some combinations).

    ``percentage`` is left out: it is the visitors column over another total, asked for by name.
    """
    out = []
    for m in METRICS:
        if m == "percentage":
            continue
        try:
            QueryRequest("site", (m,), "day", dimensions, filters)._plausible_rules()
        except QueryError:
            continue
        out.append(m)
    return tuple(out)


def _names(items: list[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


@dataclass(frozen=True, slots=True)
class CurrentVisitors:
    """Visitors with an event in the last ``minutes`` before ``now``, from events already ingested.

    ``visitors`` is None when fewer than ``k_anonymity`` (a count over a few
    minutes is not a site's total: rule 5 applies). ``newest`` is the minute of
    the newest ingested event of the site today or yesterday: how fresh the
    number is.
    """

    site_id: str
    minutes: int
    now: dt.datetime
    visitors: int | None
    k_anonymity: int
    newest: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Comparison:
    dimensions: tuple[str, ...]
    metrics: tuple[Number | None, ...]
    change: tuple[Number | None, ...]


def num(value: Number | None) -> Number:
    """A metric as a number (only a conversion rate can be None: its group not shown; counted as 0 where summed)."""
    return 0 if value is None else value


@dataclass(frozen=True, slots=True)
class ResultRow:
    dimensions: tuple[str, ...]
    #: None only for a conversion rate whose group is not shown (under K) or has nothing to divide by.
    metrics: tuple[Number | None, ...]
    comparison: Comparison | None = None


@dataclass(slots=True)
class QueryResult:
    request: QueryRequest
    start: dt.date
    end: dt.date
    rows: list[ResultRow]
    total_rows: int
    k_anonymity: int
    folded_rows: int = 0
    other_suppressed: bool = False
    rollup_days: int = 0
    raw_days: int = 0
    comparison_range: tuple[dt.date, dt.date] | None = None
    warnings: list[str] = field(default_factory=list)
    #: Set when a day was answered from a rollup built before its newest events (``rollup_max_stale``):
    #: when the oldest such rollup was built.
    stale_as_of: dt.datetime | None = None
    #: Why nothing is shown for a filtered request (its segment, or a difference with a neighbouring
    #: filter, would describe fewer than K people); None when the answer is shown.
    suppressed: str | None = None
    #: Time buckets of a filtered time series left out because they would describe fewer than K people.
    suppressed_buckets: list[str] = field(default_factory=list)
    #: Every bucket of the range (``time_labels``).
    time_labels: list[str] = field(default_factory=list)
