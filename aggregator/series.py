"""Chart points from time-series answers: every bucket of the range, its comparison, what is partial or hidden.

Shared by the dashboards and the nightly report, so both draw the same thing
from the same answers. Nothing here computes a count: each value is a row of
the query layer's answer, or 0 where an unfiltered (exact) series has no row,
or a gap where the query layer says a bucket was left out under K
(``suppressed_buckets``) or the whole segment is too small (``suppressed``).

The comparison is a second, ordinary answer over the comparison period
(:func:`aggregator.periods.comparison_range`); buckets are paired by their
offset from each period's start, as the query layer pairs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from aggregator.charts import Point
from aggregator.metrics import Number
from aggregator.periods import bucket, month_end, time_labels
from aggregator.request import QueryResult, num

Value = Callable[[Sequence[Number]], Number]


def first_metric(metrics: Sequence[Number]) -> Number:
    return metrics[0]


def now_bucket(dimension: str, now: dt.datetime, start: dt.date) -> str:
    """The label of the bucket ``now`` falls in (it is still in progress)."""
    now = now.astimezone(dt.UTC)
    if dimension == "time:hour":
        return now.strftime("%Y-%m-%d %H:00:00")
    return bucket(dimension, now.date(), start)


def _bucket_end(dimension: str, label: str) -> dt.date:
    day = dt.date.fromisoformat(label[:10])
    if dimension == "time:week":
        return day + dt.timedelta(days=6 - day.weekday())
    if dimension == "time:month":
        return month_end(day)
    return day


def _values(result: QueryResult, value: Value) -> tuple[list[str], dict[str, Number], set[str]]:
    dim = result.request.dimensions[0]
    labels = time_labels(dim, result.start, result.end)
    got = {str(r.dimensions[0]): value(tuple(num(m) for m in r.metrics)) for r in result.rows}
    hidden = set(labels) if result.suppressed else set(result.suppressed_buckets)
    return labels, got, hidden


def points(
    current: QueryResult,
    previous: QueryResult | None = None,
    *,
    value: Value = first_metric,
    now: dt.datetime | None = None,
    data_from: dt.date | None = None,
) -> list[Point]:
    """One point per bucket of ``current``'s range, up to the bucket ``now`` is in (marked partial).

    ``data_from``: the first day the site has data; comparison buckets before it are "no data", not 0.
    """
    dim = current.request.dimensions[0]
    labels, got, hidden = _values(current, value)
    cut = now_bucket(dim, now, current.start) if now is not None else None
    prev_labels: list[str] = []
    prev_got: dict[str, Number] = {}
    prev_hidden: set[str] = set()
    if previous is not None:
        prev_labels, prev_got, prev_hidden = _values(previous, value)
    out: list[Point] = []
    for i, label in enumerate(labels):
        if cut is not None and label > cut:
            break  # the future: nothing to draw, not zero
        v = None if label in hidden else got.get(label, 0)
        p_label = prev_labels[i] if i < len(prev_labels) else ""
        p: Number | None = None
        if p_label and p_label not in prev_hidden and not (data_from and _bucket_end(dim, p_label) < data_from):
            p = prev_got.get(p_label, 0)
        out.append(Point(label, v, p, p_label, partial=label == cut))
    return out
