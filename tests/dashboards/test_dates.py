"""The dashboards' date inputs, fuzzed against the dashboards app in this process: never a 5xx (issue 13 item 5).

Calendar edges (year 1, year 9999, to before from, impossible days, ranges of
millennia) once overflowed Python's dates behind `/sites/<site>?period=custom`.
A refused range is a 400 page that says why; everything else is the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dashboards.conftest import DEMO, VIEWER, VIEWER_PASSWORD
from tests.dashboards.inproc import Clock, logged_in

# The app's clock is held at the module's "now": "today" cannot move under the inputs built from it.
NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()
TOMORROW = (TODAY + dt.timedelta(days=1)).isoformat()
EDGES = [
    "0001-01-01",
    "0001-01-02",
    "9999-12-30",
    "9999-12-31",
    "1999-12-31",
    "2000-01-01",
    (TODAY - dt.timedelta(days=799)).isoformat(),
    (TODAY - dt.timedelta(days=800)).isoformat(),
    TODAY.isoformat(),
    (TODAY + dt.timedelta(days=1)).isoformat(),
    (TODAY + dt.timedelta(days=2)).isoformat(),
    "2026-02-29",
    "2024-02-29",
    "2026-02-30",
    "2026-13-01",
    "2026-00-10",
    "20260301",
    "2026-W10-1",
    "2026-060",
    "2026-03-01T12:00:00",
    "+2026-03-01",
    "２０２６-０３-０１",
    "",
    " ",
    "0000-00-00",
    "-001-01-01",
    "99999-01-01",
]
day = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(dt.date.isoformat)
near = st.integers(-900, 3).map(lambda d: (TODAY + dt.timedelta(days=d)).isoformat())
date_text = st.sampled_from(EDGES) | day | near | st.text(max_size=30)
params = st.fixed_dictionaries(
    {},
    optional={
        "period": st.sampled_from(["custom", "day", "7d", "30d", "month", "12mo", "", "week", "custom "]) | st.text(),
        "from": date_text,
        "to": date_text,
        "interval": st.sampled_from(["hour", "day", "week", "month", "minute"]),
        "metric": st.sampled_from(["visitors", "pageviews", "bounce_rate", "day_key"]),
        "browser": st.sampled_from(["Chrome", "Firefox"]) | st.text(max_size=20),
        # Not the dashboards' parameters (the KPIs always compare with the previous period): must be ignored.
        "compare": st.sampled_from(["previous_period", "year_over_year", "custom"]) | st.text(max_size=10),
        "compare_from": date_text,
        "compare_to": date_text,
    },
)
paths = st.sampled_from([f"/sites/{DEMO}", f"/sites/{DEMO}/export/browsers.csv", f"/sites/{DEMO}/export/pages.csv"])


@pytest.fixture(scope="module")
def viewer(seeded: Path) -> Iterator[httpx.Client]:
    """The viewer, logged in through the real login form of the app on the seeded lake."""
    with logged_in(seeded, Clock(NOW), VIEWER, VIEWER_PASSWORD) as client:
        yield client


@pytest.mark.slow
def test_date_inputs_never_give_a_server_error(viewer: httpx.Client) -> None:
    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(query=params, path=paths)
    def check(query: dict[str, str], path: str) -> None:
        r = viewer.get(path, params=query)
        assert r.status_code in (200, 400), (path, query, r.status_code)
        if r.status_code == 400:  # refused by the dashboards' own bounds, or by the aggregator: said why
            assert "This view cannot be shown" in r.text or "cannot be computed" in r.text, (path, query)

    check()


def test_the_calendar_edges_of_issue_13_are_a_clear_400(viewer: httpx.Client) -> None:
    for start, end in (("0001-01-01", "0001-01-02"), ("2026-01-01", "9999-12-31"), ("0001-01-01", "9999-12-31")):
        for path in (f"/sites/{DEMO}", f"/sites/{DEMO}/export/browsers.csv"):
            r = viewer.get(path, params={"period": "custom", "from": start, "to": end})
            assert r.status_code == 400, (path, start, end, r.status_code)
            assert "must be a day from 2000-01-01 to" in r.text
    # Good custom ranges are the page, with their dates: also the earliest and the longest the dashboards
    # accept, so the aggregator answers whatever the dashboards let through (its comparison period included).
    longest = (TODAY - dt.timedelta(days=799)).isoformat()
    for start, end in (("2000-01-02", "2000-01-02"), (longest, TODAY.isoformat()), (TODAY.isoformat(), TOMORROW)):
        for path in (f"/sites/{DEMO}", f"/sites/{DEMO}/export/browsers.csv"):
            r = viewer.get(path, params={"period": "custom", "from": start, "to": end})
            assert r.status_code == 200, (path, start, end, r.status_code, r.text[-500:])
        assert start in r.text or start in r.headers["content-disposition"]
