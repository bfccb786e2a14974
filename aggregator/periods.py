"""Date ranges and comparison periods, in one place (UTC calendar days).

Named ranges follow Plausible's Stats API v2: ``day`` is today; ``Nd`` the N
days before today (today excluded: it is not over yet); ``month`` and
``year`` the whole current calendar month and year; ``Nmo`` the N calendar
months before the current one; ``all`` from the first day the lake holds to
today. A custom range is two dates (both included) or two ISO 8601 datetimes
with an offset (both instants included, whole seconds).

Every range is bounded: dates before 2000-01-01 or after 2999-12-31 are not
analytics data (400), and a range is clamped to the days the lake holds before
any listing, so an absurd range costs no more than a sensible one.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Literal, get_args

from aggregator.dates import months_back

FIRST_DATE = dt.date(2000, 1, 1)
LAST_DATE = dt.date(2999, 12, 31)
MAX_DAYS = 5000  # "Nd"
MAX_MONTHS = 100  # "Nmo"

DATE_RANGES = ("day", "month", "year", "all", "Nd", "Nmo")  # for messages; N is a number
_DAYS = re.compile(r"([1-9][0-9]{0,3})d")
_MONTHS = re.compile(r"([1-9][0-9]{0,2})mo")

DateRange = str | tuple[dt.date, dt.date] | tuple[dt.datetime, dt.datetime]
#: The comparisons a query may ask for (Plausible's); the one definition, which aggregator.request re-exports.
ComparisonMode = Literal["previous_period", "year_over_year", "custom"]
COMPARISONS: tuple[ComparisonMode, ...] = get_args(ComparisonMode)


class PeriodError(ValueError):
    """A range or comparison outside what can be answered; the message says why (HTTP 400)."""


def is_named(value: str) -> bool:
    if value in ("day", "month", "year", "all"):
        return True
    days = _DAYS.fullmatch(value)
    if days:
        return int(days.group(1)) <= MAX_DAYS
    months = _MONTHS.fullmatch(value)
    return months is not None and int(months.group(1)) <= MAX_MONTHS


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def check_range(bounds: tuple[dt.date, dt.date] | tuple[dt.datetime, dt.datetime]) -> None:
    start, end = bounds
    if isinstance(start, dt.datetime) != isinstance(end, dt.datetime):
        raise PeriodError("date_range: both ends must be dates, or both datetimes")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and (start.tzinfo is None or end.tzinfo is None):
        raise PeriodError("date_range: datetimes need an offset (Z or +hh:mm)")
    first, last = _dates(bounds)
    if first > last or (isinstance(start, dt.datetime) and start > end):
        raise PeriodError("date_range starts after it ends")
    if first < FIRST_DATE or last > LAST_DATE:
        raise PeriodError(f"date_range: dates must lie between {FIRST_DATE} and {LAST_DATE}")


def _dates(bounds: tuple[dt.date, dt.date] | tuple[dt.datetime, dt.datetime]) -> tuple[dt.date, dt.date]:
    start, end = bounds
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return start.astimezone(dt.UTC).date(), end.astimezone(dt.UTC).date()
    return start, end


def resolve(value: DateRange, today: dt.date, first_day: dt.date | None) -> tuple[dt.date, dt.date]:
    """The UTC days a range covers (``first_day``: the lake's first day, for ``all``)."""
    if not isinstance(value, str):
        return _dates(value)
    if value == "day":
        return today, today
    if value == "month":
        return today.replace(day=1), month_end(today)
    if value == "year":
        return today.replace(month=1, day=1), today.replace(month=12, day=31)
    if value == "all":
        return (min(first_day, today) if first_day else today), today
    m = _DAYS.fullmatch(value)
    if m and int(m.group(1)) <= MAX_DAYS:
        n = int(m.group(1))
        return today - dt.timedelta(days=n), today - dt.timedelta(days=1)
    m = _MONTHS.fullmatch(value)
    if m and int(m.group(1)) <= MAX_MONTHS:
        this_month = today.replace(day=1)
        try:
            start = months_back(this_month, int(m.group(1)))
        except ValueError as exc:
            raise PeriodError(str(exc)) from None
        return start, this_month - dt.timedelta(days=1)
    raise PeriodError(f"Invalid date_range {value!r}")


def comparison_range(
    mode: ComparisonMode,
    start: dt.date,
    end: dt.date,
    today: dt.date,
    *,
    custom: tuple[dt.date, dt.date] | None = None,
    match_day_of_week: bool = False,
) -> tuple[dt.date, dt.date]:
    """The period a range is compared with (Plausible's rules, on UTC days).

    A range reaching into the future (``month``, ``year``) is first cut at
    today, so "this month so far" is compared with as many days before it.
    """
    if mode == "custom":
        if custom is None:
            raise PeriodError("a custom comparison needs its date_range")
        return custom
    end = min(end, max(today, start))
    length = (end - start).days
    try:
        if mode == "previous_period":
            c_start = start - dt.timedelta(days=length + 1)
        else:
            c_start = _year_before(start)
        if match_day_of_week:
            shift = (start.weekday() - c_start.weekday()) % 7
            moved = c_start + dt.timedelta(days=shift)
            c_start = moved if moved != start else moved - dt.timedelta(days=7)
        c_end = c_start + dt.timedelta(days=length)
    except OverflowError:
        raise PeriodError("the comparison period would start before year 1") from None
    if c_start < FIRST_DATE:
        raise PeriodError(f"the comparison period would start before {FIRST_DATE}")
    return c_start, c_end


def _year_before(day: dt.date) -> dt.date:
    try:
        return months_back(day, 12)
    except ValueError:
        raise PeriodError("the comparison period would start before year 1") from None


def time_labels(dimension: str, start: dt.date, end: dt.date) -> list[str]:
    """Every bucket of a time dimension over the range, as the answers label them."""
    out: list[str] = []
    day = start
    if dimension == "time:hour":
        while day <= end:
            out += [f"{day.isoformat()} {h:02d}:00:00" for h in range(24)]
            day += dt.timedelta(days=1)
    elif dimension == "time:day":
        while day <= end:
            out.append(day.isoformat())
            day += dt.timedelta(days=1)
    elif dimension == "time:week":
        while day <= end:
            out.append(day.isoformat())  # the first bucket starts with the range (Plausible clamps it so)
            day += dt.timedelta(days=7 - day.weekday())
    elif dimension == "time:month":
        while day <= end:
            out.append(day.replace(day=1).isoformat())
            day = month_end(day) + dt.timedelta(days=1)
    return out


def bucket(dimension: str, day: dt.date, start: dt.date) -> str:
    """The label of the bucket a day falls in (weeks: Monday, or the range's first day)."""
    if dimension == "time:week":
        return max(day - dt.timedelta(days=day.weekday()), start).isoformat()
    if dimension == "time:month":
        return day.replace(day=1).isoformat()
    return day.isoformat()


RATES = frozenset({"bounce_rate", "conversion_rate", "group_conversion_rate"})


def change(metric: str, current: float | None, previous: float | None, previous_visits: int = 1) -> float | None:
    """A metric's change from the comparison period: percent (integer), points for rates.

    Plausible's rules: a rate (bounce rate, conversion rate) changes in
    percentage points, and has none when the comparison period had no visits
    (``previous_visits`` 0: a rate of nothing is not 0 %); other metrics change
    by a whole percent, 0 → n is +100 and 0 → 0 is 0. The dashboards and the
    nightly report show these very numbers.
    """
    if current is None or previous is None:
        return None
    if metric in RATES:
        if not previous_visits:
            return None
        return round(current - previous, 1) if metric != "bounce_rate" else current - previous
    if previous == 0:
        return 100 if current > 0 else 0
    ratio = (current - previous) / previous * 100
    return int(ratio + 0.5) if ratio >= 0 else -int(-ratio + 0.5)  # half away from zero
