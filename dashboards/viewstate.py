"""The overview's state, read from and written to the URL so every view can be bookmarked.

``?period=30d&interval=day&metric=visitors&browser=Chrome&tab_sources=referrer&compare=year_over_year``
— an unknown period, interval, metric, tab or comparison falls back to a
default instead of failing, because URLs get hand-edited and shared. Dates and
filters are the exception: silently showing other days or another segment than
asked would mislead, so those raise :class:`ViewStateError` (a 400 page that
says what is accepted). Filters: :mod:`dashboards.filterstate`.

Named periods are resolved by :func:`aggregator.periods.resolve` (Plausible's
meaning, the same everywhere): ``7d`` and ``30d`` are the days *before* today,
``month`` the whole calendar month (compared "so far"), ``12mo`` the twelve
months before the current one. Comparison periods are
:func:`aggregator.periods.comparison_range` — the rule the nightly report uses
too: the same number of days just before (``previous_period``), the same days
a year earlier (``year_over_year``), or any range (``custom``), optionally
moved to the same weekdays (``match=1``).

Accepted custom ranges (the dashboards bound their own input before any query):
``from`` and ``to`` both given as ``YYYY-MM-DD``, real calendar days from
``EARLIEST`` (2000-01-01) to today + 1 (UTC; a browser east of UTC may already
be in tomorrow), ``from`` not after ``to``, at most ``MAX_CUSTOM_DAYS`` days,
and a comparison period that starts on or after ``EARLIEST`` too. A ``to`` of
tomorrow shows up to today.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from aggregator.filters import Filter
from aggregator.metrics import KPI_LABELS
from aggregator.periods import ComparisonMode, PeriodError, comparison_range, resolve
from dashboards import filterstate
from dashboards.filterstate import FilterChoice, FilterStateError, Pairs
from dashboards.panels import PANELS, PROPS_PANEL

PERIODS: dict[str, str] = {
    "day": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "12mo": "Last 12 months",
    "custom": "Custom range",
}
COMPARISONS: dict[str, str] = {
    "previous_period": "Previous period",
    "year_over_year": "Year over year",
    "custom": "Custom period",
    "off": "No comparison",
}
CHART_METRICS: dict[str, str] = KPI_LABELS  # the chart draws any KPI
#: What the chart can draw under a goal filter (Plausible's): conversions, and the conversion rate per bucket.
GOAL_CHART_METRICS: dict[str, str] = {
    "visitors": "Unique conversions",
    "events": "Total conversions",
    "conversion_rate": "Conversion rate",
}
MAX_PROP_KEY = 64  # collector.siteconfig's MAX_KEY: a longer tab name is no property of any site
MAX_CUSTOM_DAYS = 800  # raw data lives 90 days, aggregates 25 months
EARLIEST = dt.date(2000, 1, 1)  # before any site this product measures; keeps arithmetic far from year 1
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ViewStateError(ValueError):
    """The URL asks for dates or filters the dashboards do not show; the message says what is accepted."""


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


def custom_range(
    raw_from: str | None, raw_to: str | None, today: dt.date, names: str = "from/to"
) -> tuple[dt.date, dt.date]:
    """The custom range asked for, or :class:`ViewStateError` saying why it is not shown."""
    f_name, t_name = names.split("/")
    start, end = _day(raw_from, f_name, today), _day(raw_to, t_name, today)
    if start > end:
        raise ViewStateError(f"'{f_name}' ({start.isoformat()}) is after '{t_name}' ({end.isoformat()}).")
    if (end - start).days + 1 > MAX_CUSTOM_DAYS:
        raise ViewStateError(f"A custom range is at most {MAX_CUSTOM_DAYS} days long.")
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
    filters: tuple[FilterChoice, ...] = ()
    tabs: tuple[tuple[str, str], ...] = ()
    compare: str = "previous_period"
    compare_range: tuple[dt.date, dt.date] | None = None  # compare == "custom"
    match: bool = False  # compare on the same weekdays
    today: dt.date = EARLIEST

    @classmethod
    def parse(cls, params: Pairs | dict[str, str], today: dt.date) -> ViewState:
        pairs = list(params.items()) if isinstance(params, dict) else list(params)
        single = dict(pairs)
        period = single.get("period", "30d")
        if period not in PERIODS:
            period = "30d"
        if period == "custom":
            start, end = custom_range(single.get("from"), single.get("to"), today)
        else:
            start, end = resolve(period, today, None)
        interval = single.get("interval", "")
        if interval not in allowed_intervals(start, end):
            interval = default_interval(start, end)
        metric = single.get("metric", "visitors")
        if metric not in CHART_METRICS and metric not in GOAL_CHART_METRICS:
            metric = "visitors"
        try:
            filters = filterstate.parse(pairs)
        except FilterStateError as exc:
            raise ViewStateError(str(exc)) from None
        tabs = []
        for panel in PANELS:
            chosen = single.get(f"tab_{panel.key}")
            if chosen and chosen != panel.tabs[0].key and any(t.key == chosen for t in panel.tabs):
                tabs.append((panel.key, chosen))
        # The Properties panel's tabs are the site's property keys: which one is known only with the site
        # (an unknown one shows the first key).
        chosen = single.get(f"tab_{PROPS_PANEL}", "")
        if 0 < len(chosen) <= MAX_PROP_KEY:
            tabs.append((PROPS_PANEL, chosen))
        compare = single.get("compare", "previous_period")
        if compare not in COMPARISONS:
            compare = "previous_period"
        compare_range = None
        if compare == "custom":
            compare_range = custom_range(single.get("cmp_from"), single.get("cmp_to"), today, "cmp_from/cmp_to")
        match = single.get("match") == "1" and compare in ("previous_period", "year_over_year")
        state = cls(period, start, end, interval, metric, filters, tuple(tabs), compare, compare_range, match, today)
        state.comparison_dates()  # a comparison before EARLIEST is refused here, with the reason
        return state

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def shown_end(self) -> dt.date:
        """The last day with data so far: ``month`` and ``year`` reach into the future."""
        return min(self.end, max(self.today, self.start))

    @property
    def comparison(self) -> ComparisonMode | None:
        if self.compare == "off":
            return None
        mode: ComparisonMode = self.compare  # type: ignore[assignment]
        return mode

    def comparison_dates(self) -> tuple[dt.date, dt.date] | None:
        """The period compared with (the aggregator's rule), or None without a comparison."""
        mode = self.comparison
        if mode is None:
            return None
        try:
            c_start, c_end = comparison_range(
                mode, self.start, self.end, self.today, custom=self.compare_range, match_day_of_week=self.match
            )
        except PeriodError as exc:
            raise ViewStateError(f"This comparison cannot be shown: {exc}.") from None
        if c_start < EARLIEST:
            raise ViewStateError(f"The comparison period would start before {EARLIEST.isoformat()}.")
        return c_start, c_end

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
        for f in self.filters:
            out += f.params()
        if self.compare != "previous_period":
            out.append(("compare", self.compare))
        if self.compare_range is not None:
            out += [("cmp_from", self.compare_range[0].isoformat()), ("cmp_to", self.compare_range[1].isoformat())]
        if self.match:
            out.append(("match", "1"))
        out += [(f"tab_{p}", t) for p, t in self.tabs]
        return out

    def query(self, **changes: object) -> str:
        """The query string of this state with some fields changed."""
        return "?" + urlencode(replace(self, **changes).params())  # type: ignore[arg-type]

    def with_filters(self, pairs: dict[str, str]) -> str:
        """A row click: each key becomes "is <value>" (replacing that dimension's condition)."""
        filters = self.filters
        for key, value in pairs.items():
            filters = filterstate.replace(filters, key, "is", (value,))
        return self.query(filters=filters)

    def without_filter(self, key: str) -> str:
        return self.query(filters=filterstate.replace(self.filters, key, "is", ()))

    def with_tab(self, panel_key: str, tab_key: str) -> str:
        tabs = dict(self.tabs)
        tabs[panel_key] = tab_key
        return self.query(tabs=tuple(tabs.items()))

    def query_filters(self) -> tuple[Filter, ...]:
        return tuple(f.to_filter() for f in self.filters)

    @property
    def goal_filtered(self) -> bool:
        """A goal filter is on: the KPIs, the chart and the panels count conversions (Plausible's dashboard)."""
        return any(f.key == "goal" for f in self.filters)

    @property
    def chart_metrics(self) -> dict[str, str]:
        """The metrics the chart offers in this view."""
        return GOAL_CHART_METRICS if self.goal_filtered else CHART_METRICS

    def hidden_fields(self, *, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """The state as hidden form fields (for the GET forms that change one part of it)."""
        return [(k, v) for k, v in self.params() if k not in skip]
