"""Plausible's own Stats API v2 cases (its query tests, restated on our lake): same request, same answer.

Each case builds the few events Plausible's test builds (k = 1, so nothing
folds), asks Plausible's request through :func:`aggregator.stats_api.answer`
and checks Plausible's expected results or error message. Where our
definitions differ (documented in docs/api.md), the case says so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from aggregator.ingest import Ingester
from aggregator.query import Querier
from aggregator.settings import Settings
from aggregator.stats_api import answer
from aggregator.synth import write_segments
from collector.schema import Event
from tests.events import make_event

SITE = "compat.example"
DAY = dt.date(2021, 1, 1)
NOW = dt.datetime(2021, 1, 10, 12, tzinfo=dt.UTC)


def at(hh: int, mm: int = 0, day: dt.date = DAY) -> int:
    return int(dt.datetime.combine(day, dt.time(hh, mm), dt.UTC).timestamp())


def ev(key: int, ts: int, path: str = "/", name: str = "pageview", **kw: Any) -> Event:
    return make_event(site=SITE, ts=ts, day_key=key, path=path, name=name, **kw)


def ask(
    tmp_path: Path, events: list[Event], body: dict[str, Any], now: dt.datetime = NOW
) -> tuple[int, dict[str, Any]]:
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=1, duckdb_threads=2)
    if events:
        write_segments(events, settings.sealed_dir)
        Ingester(settings).run_once()
    return answer(Querier(settings), {"site_id": SITE, "date_range": "all"} | body, now)


def results(reply: dict[str, Any]) -> list[tuple[list[str], list[Any]]]:
    return [(r["dimensions"], r["metrics"]) for r in reply["results"]]


def test_aggregates_all_metrics(tmp_path: Path) -> None:
    # A user with pageviews at 00:00 and 00:25 (one visit), and an anonymous pageview.
    events = [ev(1, at(0)), ev(1, at(0, 25)), ev(2, at(0))]
    metrics = ["pageviews", "visits", "views_per_visit", "visitors", "bounce_rate", "visit_duration"]
    status, reply = ask(tmp_path, events, {"metrics": metrics})
    assert status == 200 and results(reply) == [([], [3, 2, 1.5, 2, 50, 750])]


def test_filter_on_a_visit_source_applies_to_the_whole_visit(tmp_path: Path) -> None:
    events = [ev(1, at(0), referrer_source="Google", channel="Organic Search"), ev(1, at(0, 25)), ev(2, at(0))]
    metrics = ["pageviews", "visitors", "bounce_rate", "visit_duration"]
    for f in (["is", "visit:source", ["Google"]], ["is", "visit:channel", ["Organic Search"]]):
        status, reply = ask(tmp_path / f[1], events, {"metrics": metrics, "filters": [f]})
        assert status == 200 and results(reply) == [([], [2, 1, 0, 1500])], f


def test_case_insensitive_is_and_is_not(tmp_path: Path) -> None:
    events = [ev(1, at(0), utm_medium="Social"), ev(1, at(0, 25), utm_medium="SOCIAL"), ev(2, at(0))]
    f = ["is", "visit:utm_medium", ["sociaL"], {"case_sensitive": False}]
    status, reply = ask(tmp_path / "is", events, {"metrics": ["pageviews", "visitors"], "filters": [f]})
    assert status == 200 and results(reply) == [([], [2, 1])]
    f = ["is_not", "visit:utm_medium", ["sociaL"], {"case_sensitive": False}]
    status, reply = ask(tmp_path / "not", events, {"metrics": ["pageviews"], "filters": [f]})
    assert results(reply) == [([], [1])]


def test_event_page_filter_counts_matching_events_and_their_visits(tmp_path: Path) -> None:
    events = [ev(1, at(0)), ev(1, at(0, 25), "/blogpost"), ev(2, at(0)), ev(3, at(0), "/blogpost")]
    metrics = ["pageviews", "visitors", "bounce_rate", "visit_duration"]
    status, reply = ask(tmp_path, events, {"metrics": metrics, "filters": [["is", "event:page", ["/blogpost"]]]})
    # Plausible gives bounce rate 100 here: it counts bounces only of visits that *entered* on the filtered page.
    # Ours is the bounce rate of every visit with such an event (the user's two-page visit did not bounce): 50.
    assert status == 200 and results(reply) == [([], [2, 2, 50, 750])]


def test_contains_not_case_insensitive_and_contains_with_a_literal_pipe(tmp_path: Path) -> None:
    events = [ev(1, at(0), "/en/page1"), ev(2, at(0), "/EN/page2"), ev(3, at(0), "/pl/page1")]
    f = ["contains_not", "event:page", ["/En/"], {"case_sensitive": False}]
    status, reply = ask(tmp_path / "a", events, {"metrics": ["visitors"], "filters": [f]})
    assert status == 200 and results(reply) == [([], [1])]
    events = [
        ev(i, at(0), p) for i, p in enumerate(("/blog/post|1", "/otherpost|1", "/blog/post|2", "/something-else"))
    ]
    f = ["contains", "event:page", ["post|1", "/something-else"]]
    status, reply = ask(tmp_path / "b", events, {"metrics": ["visitors"], "filters": [f]})
    assert status == 200 and results(reply) == [([], [3])]


def test_nested_and_or_not(tmp_path: Path) -> None:
    paths = ("/en/page1", "/en/page2", "/eng/page1", "/pl/page1", "/gb/page1")
    events = [ev(i, at(0), p) for i, p in enumerate(paths)]
    f = [
        "or",
        [
            ["and", [["contains", "event:page", ["/en"]], ["not", ["contains", "event:page", ["/eng"]]]]],
            ["contains", "event:page", ["/gb"]],
        ],
    ]
    status, reply = ask(tmp_path, events, {"metrics": ["visitors"], "filters": [f]})
    assert status == 200 and results(reply) == [([], [3])]


def test_matches_and_matches_not_are_unanchored_re2(tmp_path: Path) -> None:
    paths = ("/user/1234", "/user/789/contributions", "/blog/user/1234", "/user/ef/contributions", "/other/path")
    events = [ev(i, at(0), p) for i, p in enumerate(paths)]
    status, reply = ask(
        tmp_path / "m", events, {"metrics": ["visitors"], "filters": [["matches", "event:page", ["^/user/[0-9]+"]]]}
    )
    assert status == 200 and results(reply) == [([], [2])]
    status, reply = ask(
        tmp_path / "n", events, {"metrics": ["visitors"], "filters": [["matches_not", "event:page", ["^/user/[0-9]+"]]]}
    )
    assert results(reply) == [([], [3])]
    # A pattern that backtracking engines take exponential time on is linear for RE2.
    events = [ev(1, at(0), "/" + "a" * 200 + "!")]
    status, reply = ask(
        tmp_path / "r", events, {"metrics": ["visitors"], "filters": [["matches", "event:page", ["(a+)+$"]]]}
    )
    assert status == 200


def test_hours_with_time_labels(tmp_path: Path) -> None:
    events = [ev(1, at(0)), ev(1, at(0, 10)), ev(2, at(23, 59))]
    body = {
        "metrics": ["visitors", "pageviews", "visits", "visit_duration", "bounce_rate"],
        "date_range": ["2021-01-01", "2021-01-01"],
        "dimensions": ["time:hour"],
        "include": {"time_labels": True},
    }
    status, reply = ask(tmp_path, events, body)
    assert status == 200
    assert results(reply) == [
        (["2021-01-01 00:00:00"], [1, 2, 1, 600, 0]),
        (["2021-01-01 23:00:00"], [1, 1, 1, 0, 100]),
    ]
    assert reply["meta"]["time_labels"] == [f"2021-01-01 {h:02d}:00:00" for h in range(24)]


def test_weeks_start_with_the_range(tmp_path: Path) -> None:
    events = [
        ev(1, at(10, day=dt.date(2021, 1, 1))),
        ev(2, at(10, day=dt.date(2021, 1, 3))),
        ev(3, at(10, day=dt.date(2021, 1, 7))),
    ]
    body = {"metrics": ["visitors"], "date_range": ["2020-12-20", "2021-01-07"], "dimensions": ["time:week"],
            "include": {"time_labels": True}}  # fmt: skip
    status, reply = ask(tmp_path, events, body)
    assert status == 200
    assert results(reply) == [(["2020-12-28"], [2]), (["2021-01-04"], [1])]
    assert reply["meta"]["time_labels"] == ["2020-12-20", "2020-12-21", "2020-12-28", "2021-01-04"]


def test_pagination_and_total_rows(tmp_path: Path) -> None:
    events = [ev(i, at(0), f"/{i}") for i in range(1, 9)]
    body = {"metrics": ["visitors"], "dimensions": ["event:page"], "order_by": [["event:page", "asc"]],
            "include": {"total_rows": True}, "pagination": {"limit": 3, "offset": 3}}  # fmt: skip
    status, reply = ask(tmp_path, events, body)
    assert status == 200 and [d for d, _ in results(reply)] == [["/4"], ["/5"], ["/6"]]
    assert reply["meta"]["total_rows"] == 8


def test_comparison_with_the_previous_period(tmp_path: Path) -> None:
    days = (dt.date(2021, 1, 1), dt.date(2021, 1, 1), dt.date(2021, 1, 2), dt.date(2021, 1, 7))
    events = [ev(i, at(0, 25 * (i == 1), day=d)) for i, d in enumerate(days)]
    body = {"metrics": ["pageviews"], "date_range": ["2021-01-07", "2021-01-13"],
            "include": {"comparisons": {"mode": "previous_period"}}}  # fmt: skip
    status, reply = ask(tmp_path, events, body, now=dt.datetime(2021, 2, 1, tzinfo=dt.UTC))
    assert status == 200
    assert reply["results"] == [
        {"dimensions": [], "metrics": [1], "comparison": {"dimensions": [], "metrics": [3], "change": [-67]}}
    ]
    assert reply["meta"]["comparison_date_range"] == ["2020-12-31", "2021-01-06"]


def test_time_series_comparison_pairs_buckets_by_position_and_match_day_of_week(tmp_path: Path) -> None:
    days = ["2021-05-27", "2021-05-28", "2021-05-30", "2021-05-30", "2021-05-31", "2021-06-01", "2021-06-02",
            "2021-06-02", "2021-06-03"]  # fmt: skip
    events = [ev(i, at(10, day=dt.date.fromisoformat(d))) for i, d in enumerate(days)]
    body = {"metrics": ["pageviews"], "date_range": ["2021-06-01", "2021-06-04"], "dimensions": ["time:day"],
            "include": {"comparisons": {"mode": "previous_period"}}}  # fmt: skip
    later = dt.datetime(2021, 7, 1, tzinfo=dt.UTC)  # the range is over (one reaching into the future is cut at today)
    status, reply = ask(tmp_path / "p", events, body, now=later)
    assert status == 200
    pairs = {r["dimensions"][0]: (r["metrics"][0], r["comparison"]["dimensions"][0], r["comparison"]["metrics"][0],
                                  r["comparison"]["change"][0]) for r in reply["results"]}  # fmt: skip
    assert pairs["2021-06-01"] == (1, "2021-05-28", 1, 0)
    assert pairs["2021-06-02"] == (2, "2021-05-29", 0, 100)
    assert pairs["2021-06-03"] == (1, "2021-05-30", 2, -50)
    assert pairs["2021-06-04"] == (0, "2021-05-31", 1, -100)  # an empty bucket still gets its comparison
    body["include"] = {"comparisons": {"mode": "previous_period", "match_day_of_week": True}}
    status, reply = ask(tmp_path / "m", events, body, now=later)
    pairs = {r["dimensions"][0]: (r["comparison"]["dimensions"][0], r["comparison"]["metrics"][0])
             for r in reply["results"]}  # fmt: skip
    assert pairs["2021-06-01"] == ("2021-05-25", 0) and pairs["2021-06-03"] == ("2021-05-27", 1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metrics": ["visitors", "bounce_rate"], "dimensions": ["event:name"]},
         "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:name`"),
        ({"metrics": ["views_per_visit"], "filters": [["is", "event:page", ["/"]]]},
         "Metric `views_per_visit` cannot be queried with a filter on `event:page`."),
        ({"metrics": ["views_per_visit"], "dimensions": ["visit:source"]},
         "Metric `views_per_visit` cannot be queried with `dimensions`."),
        ({"metrics": ["views_per_visit", "visitors", "visitors"]},
         "#/metrics: Expected items to be unique but they were not."),
        ({"metrics": ["visitors"], "include": {"time_labels": True}},
         "Invalid include.time_labels: requires a time dimension."),
        ({"metrics": ["visitors"], "date_range": "bad_period"}, '#/date_range: Invalid date range "bad_period"'),
        ({"metrics": ["visitors"], "dimensions": ["badproperty"]}, '#/dimensions/0: Invalid dimension "badproperty"'),
        ({"metrics": ["events"], "dimensions": ["visit:exit_page"]},
         "Event metric(s) `events` cannot be queried along with session dimension(s) `visit:exit_page`"),
        ({"metrics": ["visitors"], "filters": [["exists?", "event:name", ["foo"]]]},
         '#/filters/0: Invalid filter ["exists?", "event:name", ["foo"]]'),
        ({"metrics": ["visitors"], "filters": "foobar"}, "#/filters: Type mismatch. Expected Array"),
        ({"metrics": ["visitors"], "pagination": {"limit": 10001}}, "#/pagination/limit: Expected the value to be <="),
        ({"metrics": ["visitors"], "date": "2021-01-01"}, "#/date: Schema does not allow additional properties."),
        ({"metrics": ["visitors"], "date_range": ["2021-02-03T00:00:00", "2021-02-03T23:59:59"]}, "offset"),
        ({"metrics": ["visitors"], "include": {"comparisons": {"mode": "custom"}}}, "#/include/comparisons"),
    ],
)  # fmt: skip
def test_validation_errors_as_plausible_words_them(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    status, reply = ask(tmp_path, [], body)
    assert status == 400 and message in reply["error"], reply


def test_named_ranges_and_datetimes(tmp_path: Path) -> None:
    # NOW is 2021-01-10 12:00 UTC: "7d" is the seven days before today, "day" today.
    events = [ev(i, at(h, day=dt.date(2021, 1, 9))) for i, h in enumerate((7, 14, 15, 18))]
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=1, duckdb_threads=2)
    write_segments(events, settings.sealed_dir)
    Ingester(settings).run_once()
    q = Querier(settings)
    for date_range, want in (("7d", 4), ("day", 0), ("month", 4), ("year", 4), ("30d", 4)):
        status, reply = answer(q, {"site_id": SITE, "metrics": ["visitors"], "date_range": date_range}, NOW)
        assert status == 200 and results(reply) == [([], [want])], date_range
    assert answer(q, {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}, NOW)[1]["query"]["date_range"] == [
        "2021-01-03",
        "2021-01-09",
    ]
    # Instants with an offset, both ends included: 07:12:34-07:00 .. 10:12:34-07:00 is 14:12:34 .. 17:12:34 UTC.
    body = {
        "site_id": SITE,
        "metrics": ["visitors"],
        "date_range": ["2021-01-09T07:12:34-07:00", "2021-01-09T10:12:34-07:00"],
    }
    status, reply = answer(q, body, NOW)
    assert status == 200 and results(reply) == [([], [1])]
    assert reply["query"]["date_range"] == ["2021-01-09T07:12:34-07:00", "2021-01-09T10:12:34-07:00"]


def test_percentage_of_the_total_with_blanks(tmp_path: Path) -> None:
    # Plausible's "breakdown with blanks + percentage": V1 on 3 visits, V2 on 2, direct on 1.
    events = [ev(i, at(i), referrer_source="V1") for i in range(1, 4)]
    events += [ev(i, at(i), referrer_source="V2") for i in range(4, 6)]
    events += [ev(6, at(6))]
    status, reply = ask(tmp_path, events, {"metrics": ["visitors", "percentage"], "dimensions": ["visit:source"]})
    assert status == 200 and results(reply) == [
        (["V1"], [3, 50.0]),
        (["V2"], [2, 33.3]),
        (["Direct / None"], [1, 16.7]),
    ]


def test_percentage_keeps_every_filter_in_its_total(tmp_path: Path) -> None:
    # The total a percentage divides by is the filtered one (Plausible: filters kept, dimensions dropped).
    events = [ev(1, at(1), browser="Chrome", referrer_source="V1"), ev(2, at(2), browser="Chrome")]
    events += [ev(3, at(3), browser="Firefox", referrer_source="V1")]
    body = {
        "metrics": ["visitors", "percentage"],
        "dimensions": ["visit:source"],
        "filters": [["is", "visit:browser", ["Chrome"]]],
    }
    status, reply = ask(tmp_path, events, body)
    assert status == 200 and results(reply) == [(["Direct / None"], [1, 50.0]), (["V1"], [1, 50.0])]


def test_percentage_of_an_empty_site_is_null(tmp_path: Path) -> None:
    status, reply = ask(tmp_path, [], {"metrics": ["visitors", "percentage"]})
    assert status == 200 and results(reply) == [([], [0, None])]


def test_rows_can_be_ordered_by_percentage(tmp_path: Path) -> None:
    events = [ev(i, at(i), referrer_source="V1") for i in range(1, 4)] + [ev(4, at(4), referrer_source="V2")]
    body = {"metrics": ["percentage"], "dimensions": ["visit:source"], "order_by": [["percentage", "asc"]]}
    status, reply = ask(tmp_path, events, body)
    assert status == 200 and results(reply) == [(["V2"], [25.0]), (["V1"], [75.0])]
