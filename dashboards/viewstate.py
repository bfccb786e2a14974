"""The overview's state, read from and written to the URL so every view can be bookmarked.

``?period=30d&interval=day&metric=visitors&browser=Chrome&tab_sources=referrer``
— an unknown period, interval, metric or tab falls back to a default instead of
failing, because URLs get hand-edited and shared. Custom dates are the exception:
silently showing other days than asked would mislead, so a range the dashboards
do not accept raises :class:`ViewStateError` (a 400 page naming the problem).

Accepted custom ranges (the dashboards bound their own input before any query):
``from`` and ``to`` both given as ``YYYY-MM-DD``, real calendar days from
``EARLIEST`` (2000-01-01) to today + 1 (UTC; a browser east of UTC may already
be in tomorrow), ``from`` not after ``to``, at most ``MAX_CUSTOM_DAYS`` days
(covers the 25 months aggregates are kept), and the period of the same length
just before it, which the KPI cards compare with, starts on or after
``EARLIEST`` too (the aggregator refuses earlier dates). A ``to`` of tomorrow
shows up to today. No date arithmetic here or in the aggregator nears year 1
or 9999.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from aggregator.filters import Filter
from dashboards.panels import FILTERS, PANELS

PERIODS: dict[str, str] = {
    "day": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "12mo": "Last 12 months",
    "custom": "Custom range",
}
INTERVALS = ("hour", "day", "week", "month")
CHART_METRICS: dict[str, str] = {
    "visitors": "Visitors",
    "visits": "Visits",
    "pageviews": "Pageviews",
    "views_per_visit": "Views per visit",
    "bounce_rate": "Bounce rate",
    "visit_duration": "Visit duration",
    "time_on_page": "Time on page",
}
MAX_CUSTOM_DAYS = 800  # raw data lives 90 days, aggregates 25 months
EARLIEST = dt.date(2000, 1, 1)  # before any site this product measures; keeps arithmetic far from year 1
MAX_FILTER_VALUE = 600
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ViewStateError(ValueError):
    """The URL asks for a date range the dashboards do not show; the message says what is accepted."""


def _months_back(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def _day(raw: str | None, field: str, today: dt.date) -> dt.date:
    """One custom-range end: strictly YYYY-MM-DD (not the other ISO forms Python accepts), within the bounds."""
    text = (raw or "").strip()
    shown = text if len(text) <= 20 else text[:20] + "…"
    if not text:
        raise ViewStateError(f"A custom range needs both dates: '{field}' is missing.")
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ViewStateError(f"'{field}' must be a date written YYYY-MM-DD, not {shown!r}.") from None
    latest = today + dt.timedelta(days=1)
    if not EARLIEST <= day <= latest:
        raise ViewStateError(
            f"'{field}' must be a day from {EARLIEST.isoformat()} to {latest.isoformat()} (UTC), not {text}."
        )
    return day


def custom_range(raw_from: str | None, raw_to: str | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The custom range asked for, or :class:`ViewStateError` saying why it is not shown."""
    start, end = _day(raw_from, "from", today), _day(raw_to, "to", today)
    if start > end:
        raise ViewStateError(f"'from' ({start.isoformat()}) is after 'to' ({end.isoformat()}).")
    days = (end - start).days + 1
    if days > MAX_CUSTOM_DAYS:
        raise ViewStateError(f"A custom range is at most {MAX_CUSTOM_DAYS} days long.")
    if start - dt.timedelta(days=days) < EARLIEST:
        # The KPI cards compare with the same number of days just before: those must exist too.
        raise ViewStateError(
            f"A range of {days} days is compared with the {days} days before it, which must not start before"
            f" {EARLIEST.isoformat()}: start on {(EARLIEST + dt.timedelta(days=days)).isoformat()} or later."
        )
    # Tomorrow (a browser ahead of UTC) shows up to today: there is nothing later to show.
    return min(start, today), min(end, today)


def allowed_intervals(start: dt.date, end: dt.date) -> tuple[str, ...]:
    days = (end - start).days + 1
    if days <= 2:
        return ("hour", "day")
    if days <= 31:
        return ("hour", "day", "week") if days <= 7 else ("day", "week")
    if days <= 180:
        return ("day", "week", "month")
    return ("week", "month")


def default_interval(start: dt.date, end: dt.date) -> str:
    days = (end - start).days + 1
    return "hour" if days <= 2 else "day" if days <= 93 else "month"


@dataclass(frozen=True, slots=True)
class ViewState:
    period: str
    start: dt.date
    end: dt.date
    interval: str
    metric: str
    filters: tuple[tuple[str, str], ...] = ()
    tabs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str], today: dt.date) -> ViewState:
        period = params.get("period", "30d")
        if period not in PERIODS:
            period = "30d"
        start, end = today - dt.timedelta(days=29), today
        if period == "day":
            start = today
        elif period == "7d":
            start = today - dt.timedelta(days=6)
        elif period == "month":
            start = today.replace(day=1)
        elif period == "12mo":
            start = _months_back(today.replace(day=1), 11)
        elif period == "custom":
            start, end = custom_range(params.get("from"), params.get("to"), today)
        interval = params.get("interval", "")
        if interval not in allowed_intervals(start, end):
            interval = default_interval(start, end)
        metric = params.get("metric", "visitors")
        if metric not in CHART_METRICS:
            metric = "visitors"
        filters = tuple((key, params[key][:MAX_FILTER_VALUE]) for key in FILTERS if key in params and params[key] != "")
        tabs = []
        for panel in PANELS:
            chosen = params.get(f"tab_{panel.key}")
            if chosen and chosen != panel.tabs[0].key and any(t.key == chosen for t in panel.tabs):
                tabs.append((panel.key, chosen))
        return cls(period, start, end, interval, metric, filters, tuple(tabs))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> tuple[dt.date, dt.date]:
        """The period of the same length just before this one (for the change figures)."""
        p_end = self.start - dt.timedelta(days=1)
        return p_end - dt.timedelta(days=self.days - 1), p_end

    def tab(self, panel_key: str) -> str | None:
        return dict(self.tabs).get(panel_key)

    def params(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = [("period", self.period)]
        if self.period == "custom":
            out += [("from", self.start.isoformat()), ("to", self.end.isoformat())]
        if self.interval and self.interval != default_interval(self.start, self.end):
            out.append(("interval", self.interval))
        if self.metric != "visitors":
            out.append(("metric", self.metric))
        out += list(self.filters)
        out += [(f"tab_{p}", t) for p, t in self.tabs]
        return out

    def query(self, **changes: object) -> str:
        """The query string of this state with some fields changed."""
        return "?" + urlencode(replace(self, **changes).params())  # type: ignore[arg-type]

    def with_filters(self, pairs: Mapping[str, str]) -> str:
        merged = dict(self.filters)
        merged.update(pairs)
        return self.query(filters=tuple((k, merged[k]) for k in FILTERS if k in merged))

    def without_filter(self, key: str) -> str:
        return self.query(filters=tuple(f for f in self.filters if f[0] != key))

    def with_tab(self, panel_key: str, tab_key: str) -> str:
        tabs = dict(self.tabs)
        tabs[panel_key] = tab_key
        return self.query(tabs=tuple(tabs.items()))

    def query_filters(self) -> tuple[Filter, ...]:
        return tuple(Filter("is", FILTERS[key][0], (value,)) for key, value in self.filters)

    def hidden_fields(self, *, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """The state as hidden form fields (for the GET forms that change one part of it)."""
        return [(k, v) for k, v in self.params() if k not in skip]
