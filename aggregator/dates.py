"""Calendar arithmetic on UTC dates."""

from __future__ import annotations

import calendar
import datetime as dt


def months_back(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` earlier (clamped to the month's last day).

    The one definition: periods ("6mo", "12mo"), the comparison "a year earlier" and the aggregate retention cut-off.
    """
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    if y < 1:
        raise ValueError("the period starts before year 1")
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))
