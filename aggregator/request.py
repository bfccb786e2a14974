"""The query API's typed request and result objects, and the error it raises.

A request names only aggregate things (metrics, dimensions, filters on
dimensions); there is no field through which events or day keys could be asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from aggregator.dimensions import DIMENSIONS
from aggregator.metrics import METRICS, Number
from aggregator.querybuild import FILTER_OPS, Filter

OTHER = "(other)"
DATE_RANGES = ("day", "7d", "30d", "month", "12mo", "all")
MAX_LIMIT = 10_000


class QueryError(ValueError):
    """The request names something unknown or is malformed; the HTTP layer answers 400."""


@dataclass(frozen=True, slots=True)
class QueryRequest:
    site_id: str
    metrics: tuple[str, ...]
    date_range: str | tuple[dt.date, dt.date] = "30d"
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = MAX_LIMIT
    offset: int = 0
    total_rows: bool = False
    comparison: str | None = None  # "previous_period"

    def validate(self) -> None:
        if not self.site_id:
            raise QueryError("site_id is required")
        if not self.metrics:
            raise QueryError("at least one metric is required")
        for m in self.metrics:
            if m not in METRICS:
                raise QueryError(f"unknown metric {m!r}")
        for d in self.dimensions:
            if d not in DIMENSIONS or DIMENSIONS[d].internal:
                raise QueryError(f"unknown dimension {d!r}")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise QueryError("a dimension is listed twice")
        for f in self.filters:
            if f.op not in FILTER_OPS:
                raise QueryError(f"unknown filter operator {f.op!r}")
            if f.dimension not in DIMENSIONS or DIMENSIONS[f.dimension].internal:
                raise QueryError(f"unknown dimension {f.dimension!r} in filter")
            if not f.values:
                raise QueryError(f"filter on {f.dimension!r} has no values")
        for key, direction in self.order_by:
            if key not in self.metrics and key not in self.dimensions:
                raise QueryError(f"order_by {key!r} is neither a requested metric nor a dimension")
            if direction not in ("asc", "desc"):
                raise QueryError(f"order_by direction must be asc or desc, not {direction!r}")
        if isinstance(self.date_range, str):
            if self.date_range not in DATE_RANGES:
                raise QueryError(f"unknown date_range {self.date_range!r}")
        elif self.date_range[0] > self.date_range[1]:
            raise QueryError("date_range starts after it ends")
        if not 1 <= self.limit <= MAX_LIMIT or self.offset < 0:
            raise QueryError(f"pagination: limit must be 1..{MAX_LIMIT}, offset >= 0")
        if self.comparison not in (None, "previous_period"):
            raise QueryError(f"unknown comparison {self.comparison!r}")


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
    metrics: tuple[Number, ...]
    change: tuple[Number | None, ...]


@dataclass(frozen=True, slots=True)
class ResultRow:
    dimensions: tuple[str, ...]
    metrics: tuple[Number, ...]
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
