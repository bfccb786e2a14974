"""Pure helpers: CSV formula injection, URL state, charts, number formats."""

from __future__ import annotations

import datetime as dt

from aggregator.csvsafe import safe_cell, to_csv
from dashboards.charts import bar, line_chart
from dashboards.fmt import change, duration, metric
from dashboards.viewstate import ViewState

TODAY = dt.date(2026, 3, 15)


def test_formula_cells_get_a_quote() -> None:
    for bad in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("/pricing") == "/pricing"
    assert safe_cell(-3) == "-3" and safe_cell(None) == ""
    assert to_csv(["a"], [['=cmd|"x"']]) == 'a\r\n"\'=cmd|""x"""\r\n'


def test_view_state_round_trips_through_the_url() -> None:
    s = ViewState.parse(
        {
            "period": "custom",
            "from": "2026-03-01",
            "to": "2026-03-10",
            "browser": "Chrome",
            "tab_sources": "referrer",
            "metric": "pageviews",
            "interval": "week",
        },
        TODAY,
    )
    assert (s.start, s.end, s.interval, s.metric) == (dt.date(2026, 3, 1), dt.date(2026, 3, 10), "week", "pageviews")
    again = ViewState.parse(dict(p.split("=", 1) for p in s.query()[1:].split("&")), TODAY)
    assert again == s
    assert s.previous() == (dt.date(2026, 2, 19), dt.date(2026, 2, 28))


def test_bad_url_values_fall_back_to_defaults() -> None:
    s = ViewState.parse(
        {"period": "<script>", "interval": "minute", "metric": "day_key", "tab_pages": "x", "from": "nonsense"}, TODAY
    )
    assert (s.period, s.interval, s.metric, s.tabs) == ("30d", "day", "visitors", ())
    future = ViewState.parse({"period": "custom", "from": "2026-03-10", "to": "2027-01-01"}, TODAY)
    assert future.end == TODAY


def test_periods() -> None:
    assert ViewState.parse({"period": "day"}, TODAY).interval == "hour"
    assert ViewState.parse({"period": "month"}, TODAY).start == dt.date(2026, 3, 1)
    year = ViewState.parse({"period": "12mo"}, TODAY)
    assert year.start == dt.date(2025, 4, 1) and year.interval == "month"


def test_chart_escapes_labels_and_uses_no_styles() -> None:
    svg = str(line_chart([("<b>", 1), ("2026-03-02", 5)], label="<script>x</script>", fmt=str))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "style" not in svg
    assert 'width="50.00"' in str(bar(0.5)) and 'width="100.00"' in str(bar(3))


def test_formats() -> None:
    assert metric("visitors", 12345) == "12.3k" and metric("bounce_rate", 41.6) == "42%"
    assert duration(65) == "1m 05s" and duration(3700) == "1h 01m"
    assert change("visitors", 12) == "+12%" and change("bounce_rate", -3) == "−3 pp" and change("x", None) == "new"


def test_period_links_carry_no_stale_interval() -> None:
    s = ViewState.parse({"period": "7d", "interval": "hour"}, TODAY)
    assert s.query(period="12mo", interval="") == "?period=12mo"
