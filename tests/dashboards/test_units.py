"""Pure helpers: CSV formula injection, URL state, charts, number formats."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError

from aggregator.charts import Point, line_chart
from aggregator.csvsafe import safe_cell, to_csv
from aggregator.fmt import change, duration, metric
from dashboards.charts import bar
from dashboards.users import dummy_hash
from dashboards.viewstate import MAX_CUSTOM_DAYS, ViewState, ViewStateError

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
    again = ViewState.parse([tuple(p.split("=", 1)) for p in s.query()[1:].split("&")], TODAY)  # type: ignore[misc]
    assert again == s
    assert s.comparison_dates() == (dt.date(2026, 2, 19), dt.date(2026, 2, 28))


def test_bad_url_values_fall_back_to_defaults() -> None:
    s = ViewState.parse(
        {"period": "<script>", "interval": "minute", "metric": "day_key", "tab_pages": "x", "from": "nonsense"}, TODAY
    )
    assert (s.period, s.interval, s.metric, s.tabs) == ("30d", "day", "visitors", ())
    # Tomorrow (a browser east of UTC) is accepted and shows up to today.
    soon = ViewState.parse({"period": "custom", "from": "2026-03-10", "to": "2026-03-16"}, TODAY)
    assert (soon.start, soon.end) == (dt.date(2026, 3, 10), TODAY)
    both = ViewState.parse({"period": "custom", "from": "2026-03-16", "to": "2026-03-16"}, TODAY)
    assert (both.start, both.end) == (TODAY, TODAY)


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("0001-01-01", "0001-01-02", "from 2000-01-01 to 2026-03-16"),  # issue 13: a 500 (date overflow)
        ("1999-12-31", "2026-03-01", "'from' must be a day from 2000-01-01"),
        ("2026-03-01", "9999-12-31", "'to' must be a day from 2000-01-01 to 2026-03-16"),
        ("9999-12-30", "9999-12-31", "'from' must be a day"),
        ("2026-03-10", "2027-01-01", "'to' must be a day"),
        ("2026-03-17", "2026-03-17", "'from' must be a day"),
        ("2026-03-10", "2026-03-01", "'from' (2026-03-10) is after 'to' (2026-03-01)"),
        ("2026-02-30", "2026-03-01", "'from' must be a date written YYYY-MM-DD"),
        ("2026-13-01", "2026-03-01", "YYYY-MM-DD"),
        ("20260301", "2026-03-02", "YYYY-MM-DD"),  # other ISO forms Python would read
        ("2026-W10-1", "2026-03-02", "YYYY-MM-DD"),
        ("2026-03-01T00:00", "2026-03-02", "YYYY-MM-DD"),
        ("２０２６-03-01", "2026-03-02", "YYYY-MM-DD"),
        ("x" * 5000, "2026-03-02", "YYYY-MM-DD"),
        ("2026-03-01", "", "'to' is missing"),
        ("", "2026-03-01", "'from' is missing"),
        ("2000-01-01", "2026-03-16", f"at most {MAX_CUSTOM_DAYS} days"),
        # The period the KPI cards compare with must not start before 2000-01-01 either.
        ("2000-01-01", "2000-01-01", "comparison period would start before 2000-01-01"),
        ("2000-01-10", "2000-01-19", "comparison period would start before 2000-01-01"),
    ],
)
def test_custom_ranges_outside_the_bounds_are_refused_with_a_message(start: str, end: str, says: str) -> None:
    with pytest.raises(ViewStateError) as err:
        ViewState.parse({"period": "custom", "from": start, "to": end}, TODAY)
    assert says in str(err.value), str(err.value)
    assert len(str(err.value)) < 200


def test_the_longest_custom_range_and_its_previous_period() -> None:
    start = TODAY - dt.timedelta(days=MAX_CUSTOM_DAYS - 1)
    s = ViewState.parse({"period": "custom", "from": start.isoformat(), "to": TODAY.isoformat()}, TODAY)
    compared = s.comparison_dates()
    assert s.days == MAX_CUSTOM_DAYS and compared and compared[0] == start - dt.timedelta(days=MAX_CUSTOM_DAYS)
    first = ViewState.parse({"period": "custom", "from": "2000-01-11", "to": "2000-01-20"}, TODAY)
    assert first.comparison_dates() == (dt.date(2000, 1, 1), dt.date(2000, 1, 10))


def test_periods_are_resolved_by_the_aggregator_as_plausible_means_them() -> None:
    assert ViewState.parse({"period": "day"}, TODAY).interval == "hour"
    week = ViewState.parse({"period": "7d"}, TODAY)
    assert (week.start, week.end) == (dt.date(2026, 3, 8), dt.date(2026, 3, 14))  # the 7 days before today
    month = ViewState.parse({"period": "month"}, TODAY)
    assert (month.start, month.end, month.shown_end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31), TODAY)
    # "This month" is compared so far: 15 days with the 15 days before (the report's rule too).
    assert month.comparison_dates() == (dt.date(2026, 2, 14), dt.date(2026, 2, 28))
    year = ViewState.parse({"period": "12mo"}, TODAY)
    assert (year.start, year.end, year.interval) == (dt.date(2025, 3, 1), dt.date(2026, 2, 28), "month")
    assert year.comparison_dates() == (dt.date(2024, 3, 1), dt.date(2025, 2, 28))  # 365 days, stated as such
    yoy = ViewState.parse({"period": "7d", "compare": "year_over_year", "match": "1"}, TODAY)
    assert yoy.comparison_dates() == (dt.date(2025, 3, 9), dt.date(2025, 3, 15))  # the same weekdays
    off = ViewState.parse({"period": "7d", "compare": "off"}, TODAY)
    assert off.comparison_dates() is None and "compare=off" in off.query()
    custom = ViewState.parse({"compare": "custom", "cmp_from": "2026-01-01", "cmp_to": "2026-01-31"}, TODAY)
    assert custom.comparison_dates() == (dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    with pytest.raises(ViewStateError, match="'cmp_from' .* is after 'cmp_to'"):
        ViewState.parse({"compare": "custom", "cmp_from": "2026-02-01", "cmp_to": "2026-01-31"}, TODAY)


def test_chart_escapes_labels_and_uses_no_styles() -> None:
    svg = line_chart([Point("<b>", 1), Point("2026-03-02", 5)], title="<script>x</script>", fmt=str)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "style" not in svg
    assert 'width="50.00"' in str(bar(0.5)) and 'width="100.00"' in str(bar(3))


def test_formats() -> None:
    assert metric("visitors", 12345) == "12.3k" and metric("bounce_rate", 41.6) == "42%"
    assert duration(65) == "1m 05s" and duration(3700) == "1h 01m"
    assert change("visitors", 12) == "+12%" and change("bounce_rate", -3) == "−3 pp" and change("x", None) == "–"


def test_period_links_carry_no_stale_interval() -> None:
    s = ViewState.parse({"period": "7d", "interval": "hour"}, TODAY)
    assert s.query(period="12mo", interval="") == "?period=12mo"


def test_goal_and_property_filters_round_trip_in_a_fixed_order() -> None:
    pairs = [("prop.plan", "Pro"), ("prop_op.plan", "contains"), ("goal", "Order"), ("browser", "Chrome"),
             ("prop.method", "email"), ("tab_props", "method")]  # fmt: skip
    s = ViewState.parse(pairs, TODAY)
    assert [(f.key, f.dimension, f.op) for f in s.filters] == [
        ("browser", "visit:browser", "is"),
        ("goal", "event:goal", "is"),
        ("prop.method", "event:props:method", "is"),
        ("prop.plan", "event:props:plan", "contains"),
    ]
    assert s.goal_filtered and s.tab("props") == "method"
    assert s.query() == (
        "?period=30d&browser=Chrome&goal=Order&prop.method=email&prop.plan=Pro&prop_op.plan=contains&tab_props=method"
    )
    assert ViewState.parse([tuple(p.split("=", 1)) for p in s.query()[1:].split("&")], TODAY) == s  # type: ignore[misc]
    # A row click on a property replaces its condition; the chip's text names the property.
    assert "prop.plan=Free" in s.with_filters({"prop.plan": "Free"}) and "prop_op.plan" not in s.with_filters(
        {"prop.plan": "Free"}
    )
    assert [f.text for f in s.filters][-1] == "Property plan contains Pro"


def test_conversion_rates_are_formatted_to_a_decimal() -> None:
    assert metric("conversion_rate", 4.17) == "4.2%" and metric("conversion_rate", 100.0) == "100%"
    assert metric("conversion_rate", None) == "–"
    assert change("conversion_rate", 3.1) == "+3.1 pp" and change("conversion_rate", -0.04) == "±0 pp"


def test_the_dummy_hash_costs_what_a_real_one_does_and_matches_no_password() -> None:
    # The unknown-name path verifies against it: it must run the full argon2 check (a malformed hash would
    # fail at once, and tell an attacker which names exist) with the same costs, and never succeed.
    hasher = PasswordHasher()
    real, dummy = hasher.hash("a real password"), dummy_hash(hasher)
    assert extract_parameters(dummy) == extract_parameters(real)
    assert dummy != dummy_hash(hasher)
    for password in ("", "a real password", dummy):
        with pytest.raises(VerifyMismatchError):
            hasher.verify(dummy, password)
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)
    assert extract_parameters(dummy_hash(cheap)) == extract_parameters(cheap.hash("x"))
