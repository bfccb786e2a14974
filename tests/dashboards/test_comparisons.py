"""Comparisons on the overview, in process with an injected clock, against the plain-Python oracle.

Issue 18: "+2972 %" against a comparison period holding one day of data, "0 new"
for an empty range, "compared with the previous 335 days" for 12 months, a
bounce rate "+17 pp" against no visits, KPI cards "0" for a segment under K.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aggregator.periods import change
from collector.schema import Event
from tests.aggregator.oracle import expected
from tests.dashboards.conftest import DEMO, copy_of
from tests.dashboards.inproc import Clock, logged_in
from tests.dashboards.lakes import NOW, RARE_BROWSER, START, known_events

KPIS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "time_on_page")


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return known_events()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, known_lake: Path) -> Iterator[httpx.Client]:
    with logged_in(copy_of(known_lake, tmp_path_factory.mktemp("compare")), Clock(NOW)) as c:
        yield c


def cards(html: str) -> dict[str, tuple[float, str]]:
    """metric → (value, change text) of the KPI cards."""
    out = {}
    for m in re.finditer(
        r'data-metric="(\w+)">.*?data-value="([^"]+)".*?(?:<span class="change[^"]*"[^>]*>([^<]*)</span>|</a>)',
        html,
        re.S,
    ):
        out[m.group(1)] = (float(m.group(2)), m.group(3) or "")
    return out


def test_changes_are_the_query_layers_against_the_previous_seven_days(client: httpx.Client, events: list) -> None:
    html = client.get(f"/sites/{DEMO}", params={"period": "7d"}).text
    now, before = (dt.date(2026, 11, 15), dt.date(2026, 11, 21)), (dt.date(2026, 11, 8), dt.date(2026, 11, 14))
    assert "Last 7 days: 2026-11-15 – 2026-11-21 (UTC, 7 days)" in html
    assert "compared with 2026-11-08 – 2026-11-14 (previous period, 7 days)" in html
    truth = expected(events, DEMO, *now, KPIS)[()]
    prior = expected(events, DEMO, *before, KPIS)[()]
    got = cards(html)
    for m in KPIS:
        assert got[m][0] == truth[m], m
        pct = change(m, truth[m], prior[m], int(prior["visits"]))
        assert pct is not None
        sign = "+" if pct > 0 else "−" if pct < 0 else "±"
        assert got[m][1] == f"{sign}{abs(round(pct))}{' pp' if m == 'bounce_rate' else '%'}", m
    # The chart has the comparison line, and each day's column names both days and both values.
    assert 'class="prevline"' in html and "Previous period (2026-11-08 – 2026-11-14)" in html
    daily = {d: expected(events, DEMO, d, d, ("visitors",))[()]["visitors"] for d in (now[0], before[0])}
    first = re.search(r'<rect class="hit"[^>]*data-label="2026-11-15"[^>]*>', html)
    assert first is not None
    assert f'data-value="{int(daily[now[0]])}"' in first.group(0)
    assert f'data-prev-label="2026-11-08" data-prev="{int(daily[before[0]])}"' in first.group(0)


def test_no_data_in_the_comparison_period_is_said_in_words(client: httpx.Client) -> None:
    # The 30 days before 2026-10-23 hold nothing: no "+N %" and no "new", no "+17 pp" for the bounce rate.
    html = client.get(f"/sites/{DEMO}", params={"period": "30d"}).text
    assert "Last 30 days: 2026-10-23 – 2026-11-21" in html and "compared with 2026-09-23 – 2026-10-22" in html
    assert "no data in the comparison period" in html
    got = cards(html)
    assert all(text == "no data to compare" for _, text in got.values()), got
    assert not re.search(r'class="change[^"]*"[^>]*>[^<]*(%|pp|new)', html)


def test_a_comparison_period_partly_before_the_data_gives_no_percentage(client: httpx.Client) -> None:
    html = client.get(f"/sites/{DEMO}", params={"period": "custom", "from": "2026-11-10", "to": "2026-11-16"}).text
    assert "compared with 2026-11-03 – 2026-11-09" in html
    assert f"data begins on {START.isoformat()}" in html and "only 2 of its 7 days have data" in html
    assert all(text == "comparison only partly covered" for _, text in cards(html).values())


def test_twelve_months_are_compared_with_the_twelve_months_before(client: httpx.Client) -> None:
    html = client.get(f"/sites/{DEMO}", params={"period": "12mo"}).text
    assert "Last 12 months: 2025-11-01 – 2026-10-31 (UTC, 365 days)" in html
    assert "compared with 2024-11-01 – 2025-10-31 (previous period, 365 days)" in html
    assert "335 days" not in html


def test_year_over_year_and_same_weekdays(client: httpx.Client) -> None:
    html = client.get(f"/sites/{DEMO}", params={"period": "7d", "compare": "year_over_year", "match": "1"}).text
    assert "compared with 2025-11-16 – 2025-11-22 (year over year, 7 days)" in html  # Sunday to Saturday again
    html = client.get(f"/sites/{DEMO}", params={"period": "7d", "compare": "off"}).text
    assert "without comparison" in html and 'class="prevline"' not in html and 'class="change' not in html


def test_this_month_so_far_against_as_many_days_before(client: httpx.Client) -> None:
    html = client.get(f"/sites/{DEMO}", params={"period": "month"}).text
    # The report's rule too: the same number of days just before (Plausible's "previous period").
    assert "This month: 2026-11-01 – 2026-11-30 (UTC, 30 days; so far 22)" in html
    assert "compared with 2026-10-10 – 2026-10-31 (previous period, 22 days)" in html


def test_a_segment_under_k_is_said_to_be_too_small_not_shown_as_zeros(client: httpx.Client, events: list) -> None:
    rare = expected(events, DEMO, dt.date(2026, 11, 15), dt.date(2026, 11, 21), ("visitors",), (), (
        ("is", "visit:browser", (RARE_BROWSER,)),))  # fmt: skip
    assert rare[()]["visitors"] == 4  # in the lake, K - 1 people
    html = client.get(f"/sites/{DEMO}", params={"period": "7d", "browser": RARE_BROWSER}).text
    assert "This segment is too small to show (fewer than 5 people)." in html
    assert 'class="kpivalue"' not in html and '<svg class="chart' not in html and 'id="panel-pages"' not in html
    # The same page through a comparison: nothing either (the query layer decides, not the dashboards).
    assert "no data in the comparison period" not in html


def test_partial_buckets_are_marked_and_the_future_is_not_drawn(client: httpx.Client) -> None:
    html = client.get(f"/sites/{DEMO}", params={"period": "day"}).text
    labels = re.findall(r'<rect class="hit"[^>]*data-label="([^"]+)"', html)
    wide = labels[: len(labels) // 2]
    assert wide[-1] == "2026-11-22 12:00:00" and len(wide) == 13  # 00:00 .. 12:00, nothing after 12:30
    assert 'class="partialband"' in html and "still in progress (so far)" in html
    assert re.search(r'data-label="2026-11-22 12:00:00" data-value="\d+ so far"', html)
