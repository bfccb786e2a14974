"""The overview's state, read from and written to the URL so every view can be bookmarked.

``?period=30d&interval=day&metric=visitors&browser=Chrome&tab_sources=referrer``
— anything invalid falls back to a default instead of failing, because URLs get
hand-edited and shared.
"""

from __future__ import annotations

import calendar
import datetime as dt
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
MAX_FILTER_VALUE = 600


def _months_back(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def _date(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


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
            a, b = _date(params.get("from")), _date(params.get("to"))
            if a is None or b is None:
                period = "30d"
            else:
                a, b = min(a, b), max(a, b)
                b = min(b, today)
                a = max(min(a, b), b - dt.timedelta(days=MAX_CUSTOM_DAYS))
                start, end = a, b
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
