"""Every metric × dimension against ground truth computed in plain Python (tests/aggregator/oracle.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import shutil
from pathlib import Path

import pytest

from aggregator.dimensions import DIMENSIONS, PUBLIC_DIMENSIONS, ROLLUP_PAIRS
from aggregator.filters import Filter
from aggregator.ingest import Ingester
from aggregator.metrics import METRICS, RATIO_METRICS
from aggregator.query import OTHER, Querier, QueryError, QueryRequest, QueryResult
from aggregator.request import allowed_metrics
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests.aggregator.oracle import expected, folded, people
from tests.events import make_event

WWW = "www.onecloud.example"
DOCS = "docs.onecloud.example"
START = dt.date(2026, 11, 20)
END = dt.date(2026, 11, 23)  # the synthetic visitors of the 22nd run into the 23rd ("today")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
TRAFFIC = Traffic(START, 3, {WWW: 70, DOCS: 12}, seed=3)


@dataclasses.dataclass
class Data:
    events: list[Event]
    raw: Settings  # lake without rollups: everything from raw events
    mixed: Settings  # closed days from rollups, today raw


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    events = generate(TRAFFIC)
    base = tmp_path_factory.mktemp("query")
    raw = Settings(data_dir=base / "raw", k_anonymity=1, duckdb_threads=2)
    write_segments(events, raw.sealed_dir, per_segment=400)
    Ingester(raw).run_once()
    mixed = dataclasses.replace(raw, data_dir=base / "mixed")
    shutil.copytree(raw.data_dir, mixed.data_dir)
    assert refresh_rollups(mixed, NOW) > 0
    return Data(events, raw, mixed)


@functools.cache
def querier(settings: Settings) -> Querier:
    """One querier per lake, as a dashboards process keeps one: raw days are rolled up in memory once."""
    return Querier(settings)


def run(settings: Settings, **kw: object) -> QueryResult:
    args: dict[str, object] = {"site_id": WWW, "date_range": (START, END)} | kw
    if "metrics" not in args:
        args["metrics"] = allowed_metrics(args.get("dimensions", ()), args.get("filters", ()))  # type: ignore[arg-type]
    return querier(settings).run(QueryRequest(**args), NOW)  # type: ignore[arg-type]


#: The metrics counted per row (conversion rates need a goal filter: tests/aggregator/test_goals.py).
COUNTED = tuple(m for m in METRICS if m not in RATIO_METRICS)


def as_dict(result: QueryResult) -> dict[tuple[str, ...], dict[str, float]]:
    return {r.dimensions: dict(zip(result.request.metrics, r.metrics, strict=True)) for r in result.rows}


def truth(data: Data, k: int, site: str = WWW, **kw: object) -> dict[tuple[str, ...], dict[str, float]]:
    filters = tuple(Filter(op, d, v) for op, d, v in kw.get("filters", ()))  # type: ignore[attr-defined]
    metrics = kw.pop("metrics", None) or allowed_metrics(kw.get("dimensions", ()), filters)  # type: ignore[arg-type]
    rows = expected(data.events, site, kw.pop("start", START), kw.pop("end", END), COUNTED, **kw)  # type: ignore[arg-type]
    exempt = not kw.get("dimensions") and not kw.get("filters")
    return {
        key: {m: v for m, v in row.items() if m in metrics}  # type: ignore[operator]
        for key, row in rows.items()
        # an empty filtered segment reveals nothing: its totals are zeros
        if exempt or people(row) >= k or (not kw.get("dimensions") and row["_visitors"] == 0)
    }


@pytest.mark.parametrize("dimension", [None, *PUBLIC_DIMENSIONS])
def test_every_metric_by_every_dimension_matches_ground_truth(data: Data, dimension: str | None) -> None:
    dims = (dimension,) if dimension else ()
    want = truth(data, 1, dimensions=dims)
    for settings in (data.raw, data.mixed):
        got = run(settings, dimensions=dims)
        assert as_dict(got) == want
    if dimension and DIMENSIONS[dimension].rollup:
        assert run(data.mixed, dimensions=dims).rollup_days == 3
    # A filter that keeps everything forces the raw-event SQL (unfiltered queries of days without
    # a built rollup are answered from one computed in memory, tested in test_query_daycache.py).
    keep_all = (("is_not", "event:page", ("/no-such-page",)),)
    got = run(data.raw, dimensions=dims, filters=tuple(Filter(*f) for f in keep_all))
    assert got.rollup_days == 0 and as_dict(got) == truth(data, 1, dimensions=dims, filters=keep_all)


@pytest.mark.parametrize(
    ("dims", "filters"),
    [
        (("visit:source", "time:day"), ()),
        (("event:page", "visit:device"), ()),
        (("event:page",), (("is", "visit:source", ("Google", "LinkedIn")),)),
        (("visit:browser",), (("is_not", "visit:device", ("desktop",)), ("contains", "event:page", ("docs",)))),
        ((), (("is", "visit:entry_page", ("/",)),)),
        (("time:hour",), (("contains", "visit:channel", ("Search",)),)),
        (("visit:exit_page",), (("is", "event:name", ("File Download", "404")),)),
        (("visit:browser", "visit:browser_version"), ()),
        (("visit:os", "visit:os_version"), (("is_not", "visit:device", ("desktop",)),)),
    ],
)
def test_filters_and_combined_dimensions_match_ground_truth(
    data: Data, dims: tuple[str, ...], filters: tuple[tuple[str, str, tuple[str, ...]], ...]
) -> None:
    fs = tuple(Filter(op, d, v) for op, d, v in filters)
    want = truth(data, 1, dimensions=dims, filters=filters)
    for settings in (data.raw, data.mixed):
        got = run(settings, dimensions=dims, filters=fs)
        assert as_dict(got) == want
        assert got.rollup_days == 0 or not fs
    if dims in ROLLUP_PAIRS and not fs:  # the "versions" tabs: from the rollups' pair dimensions
        assert run(data.mixed, dimensions=dims).rollup_days == 3


def test_k_anonymity_folds_rows_under_k_people_into_an_exact_other(data: Data) -> None:
    rows = expected(data.events, WWW, START, END, ("visitors",), dimensions=("event:page",))
    sizes = sorted({people(r) for r in rows.values()})
    for k in (sizes[len(sizes) // 2], sizes[-1]):
        settings = dataclasses.replace(data.mixed, k_anonymity=k)
        got = run(settings, metrics=("visitors", "pageviews"), dimensions=("event:page",))
        shown, other = folded(data.events, WWW, START, END, ("visitors", "pageviews"), "event:page", k)
        assert {key: row for key, row in as_dict(got).items() if key != (OTHER,)} == {
            key: {"visitors": r["visitors"], "pageviews": r["pageviews"]} for key, r in shown.items()
        }
        if other is not None:
            # (other) is the union counted again: a visitor of several folded pages counts once.
            assert got.rows[-1].dimensions == (OTHER,) and got.rows[-1].metrics == (
                other["visitors"],
                other["pageviews"],
            )
        else:
            assert got.other_suppressed
        assert got.folded_rows == len([r for r in rows.values() if r["_visitors"] > 0]) - len(shown)


def _event(site: str, ts: int, key: int, path: str = "/", name: str = "pageview", engaged: int | None = None) -> Event:
    scroll = 50 if engaged else None
    return make_event(site=site, ts=ts, day_key=key, path=path, name=name, engaged_ms=engaged, scroll_depth=scroll)


def _lake(tmp_path: Path, events: list[Event], k: int) -> Settings:
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=k, duckdb_threads=2)
    write_segments(events, settings.sealed_dir)
    Ingester(settings).run_once()
    return settings


@pytest.mark.parametrize("k", [4, 5, 6])
def test_k_anonymity_boundary_at_k_minus_1_k_and_k_plus_1(tmp_path: Path, k: int) -> None:
    t0 = int(dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC).timestamp())
    evs = [_event("k.example", t0 + i, 1000 + i, "/five") for i in range(5)]
    evs += [_event("k.example", t0 + 100 + i, 2000 + i, "/one") for i in range(1)]
    settings = _lake(tmp_path, evs, k)
    got = Querier(settings).run(QueryRequest("k.example", ("visitors",), (START, START), ("event:page",)), NOW)
    rows = {r.dimensions: r.metrics[0] for r in got.rows}
    # /one (1 visitor) folds; alone in (other) it would be 1 visitor, and the total (6) minus /five (5) would
    # reveal it: /five folds too, and (other) holds both (6 >= K). At K = 6 /five is under K anyway.
    assert rows == {(OTHER,): 6}
    assert got.folded_rows == 2 and not got.other_suppressed
    # Unfiltered totals are exempt; filtered ones are not.
    totals = Querier(settings).run(QueryRequest("k.example", ("visitors",), (START, START)), NOW)
    assert [r.metrics for r in totals.rows] == [(6,)]
    one = Querier(settings).run(
        QueryRequest("k.example", ("visitors",), (START, START), filters=(Filter("is", "event:page", ("/one",)),)),
        NOW,
    )
    assert one.rows == [] and one.suppressed


def test_empty_site_and_day_with_only_engagement_events(tmp_path: Path) -> None:
    midnight = int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp())
    evs = [_event("e.example", midnight - 60 + i, 10 + i) for i in range(5)]
    # Tabs left open over midnight report engaged time after the key changed: a day of engagement only.
    evs += [_event("e.example", midnight + 30 + i, 50 + i, name="engagement", engaged=20_000) for i in range(5)]
    settings = _lake(tmp_path, evs, 5)
    q = Querier(settings)
    day2 = dt.date(2026, 11, 21)
    totals = q.run(QueryRequest("e.example", COUNTED, (day2, day2)), NOW)
    values = dict(zip(COUNTED, totals.rows[0].metrics, strict=True))
    assert values["visitors"] == 0 and values["visits"] == 0 and values["pageviews"] == 0
    assert values["time_on_page"] == 20 and values["scroll_depth"] == 50
    by_day = q.run(QueryRequest("e.example", ("visitors",), (START, day2), ("time:day",)), NOW)
    # A site's unfiltered time series is exempt (like its totals): every day, never an "(other)" bucket.
    assert [(r.dimensions, r.metrics) for r in by_day.rows] == [(("2026-11-20",), (5,)), (("2026-11-21",), (0,))]
    assert by_day.folded_rows == 0
    empty = q.run(QueryRequest("nobody.example", COUNTED, "30d"), NOW)
    assert empty.rows[0].metrics == (0, 0, 0, 0.0, 0, 0, 0, 0, 0)
    assert q.run(QueryRequest("nobody.example", ("visitors", "pageviews"), "30d", ("event:page",)), NOW).rows == []


def test_days_are_utc_at_the_boundary(tmp_path: Path) -> None:
    midnight = int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp())
    evs = [_event("b.example", midnight - 1, 100 + i) for i in range(5)]
    evs += [_event("b.example", midnight, 200 + i) for i in range(6)]
    settings = _lake(tmp_path, evs, 5)
    q = Querier(settings)
    res = q.run(QueryRequest("b.example", ("visitors",), (START, dt.date(2026, 11, 21)), ("time:day",)), NOW)
    assert [(r.dimensions, r.metrics) for r in res.rows] == [(("2026-11-20",), (5,)), (("2026-11-21",), (6,))]
    hours = q.run(QueryRequest("b.example", ("visitors",), (START, dt.date(2026, 11, 21)), ("time:hour",)), NOW)
    assert [r.dimensions for r in hours.rows] == [("2026-11-20 23:00:00",), ("2026-11-21 00:00:00",)]


def test_date_ranges_use_the_injected_clock(data: Data) -> None:
    # Plausible's v2 names: "Nd" are the N days before today (today is not over), "Nmo" the months before this
    # one, "month" and "year" the whole calendar period; "all" from the lake's first day.
    q = Querier(data.raw)
    today = NOW.date()
    cases = {
        "day": (today, today),
        "7d": (dt.date(2026, 11, 16), dt.date(2026, 11, 22)),
        "30d": (dt.date(2026, 10, 24), dt.date(2026, 11, 22)),
        "month": (dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
        "6mo": (dt.date(2026, 5, 1), dt.date(2026, 10, 31)),
        "12mo": (dt.date(2025, 11, 1), dt.date(2026, 10, 31)),
        "year": (dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        "all": (START, today),
    }
    for name, (start, end) in cases.items():
        res = q.run(QueryRequest(WWW, ("visitors",), name), NOW)
        assert (res.start, res.end) == (start, end), name
        assert res.rows[0].metrics[0] == truth(data, 1, start=start, end=end)[()]["visitors"], name


def test_order_pagination_total_rows_and_comparison(data: Data) -> None:
    res = run(
        data.mixed,
        metrics=("visitors", "pageviews"),
        dimensions=("event:page",),
        order_by=(("pageviews", "asc"),),
        limit=3,
        offset=1,
        total_rows=True,
    )
    full = run(
        data.mixed, metrics=("visitors", "pageviews"), dimensions=("event:page",), order_by=(("pageviews", "asc"),)
    )
    assert res.rows == full.rows[1:4] and res.total_rows == len(full.rows)
    assert [r.metrics[1] for r in full.rows] == sorted(r.metrics[1] for r in full.rows)
    day = dt.date(2026, 11, 22)
    cmp = run(
        data.mixed,
        metrics=("visitors",),
        date_range=(day, day),
        dimensions=("visit:device",),
        comparison="previous_period",
    )
    prev = as_dict(
        run(
            data.mixed,
            metrics=("visitors",),
            date_range=(day - dt.timedelta(days=1),) * 2,
            dimensions=("visit:device",),
        )
    )
    for row in cmp.rows:
        assert row.comparison is not None and row.comparison.metrics == (prev[row.dimensions]["visitors"],)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"metrics": ("visitors", "ip_address")}, "unknown metric 'ip_address'"),
        ({"dimensions": ("visit:day_key",)}, "unknown dimension 'visit:day_key'"),
        ({"filters": (Filter("is", "event:props", ("x",)),)}, "unknown dimension 'event:props'"),
        ({"dimensions": ("pair:os_version",)}, "unknown dimension 'pair:os_version'"),
        ({"filters": (Filter("is", "pair:browser_version", ("x",)),)}, "unknown dimension 'pair:browser_version'"),
        ({"filters": (Filter("like", "event:page", ("x",)),)}, "unknown filter operator"),
        ({"filters": (Filter("matches", "event:page", ("(unclosed",)),)}, "invalid regular expression"),
        ({"filters": (Filter("is", "time:day", ("2026-11-20",)),)}, "use date_range"),
        ({"date_range": "fortnight"}, "unknown date_range"),
        ({"date_range": (dt.date(1, 1, 1), dt.date(9999, 12, 30))}, "dates must lie between"),
        ({"order_by": (("pageviews", "desc"),), "metrics": ("visitors",)}, "order_by 'pageviews'"),
        ({"metrics": ("visitors", "visitors")}, "a metric is listed twice"),
        ({"metrics": ("views_per_visit",), "dimensions": ("visit:source",)}, "cannot be queried with `dimensions`"),
        (
            {"metrics": ("views_per_visit",), "filters": (Filter("is", "event:page", ("/",)),)},
            "cannot be queried with a filter on `event:page`",
        ),
        (
            {"metrics": ("visitors", "bounce_rate"), "dimensions": ("event:name",)},
            "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:name`",
        ),
        (
            {"metrics": ("events",), "dimensions": ("visit:exit_page",)},
            "Event metric(s) `events` cannot be queried along with session dimension(s) `visit:exit_page`",
        ),
        ({"time_labels": True}, "requires a time dimension"),
        ({"filters": (Filter("is", "visit:browser", tuple(f"b{i}" for i in range(20))),)}, "too many conditions"),
    ],
)
def test_invalid_requests_name_the_problem(data: Data, kw: dict[str, object], message: str) -> None:
    kw = {"metrics": ("visitors",)} | kw
    with pytest.raises(QueryError, match=re.escape(message)):
        run(data.raw, **kw)


def test_run_many_shares_work_and_gives_the_same_answers(data: Data) -> None:
    dims = [(), ("time:day",), ("visit:source",), ("event:page",), ("visit:isp",), ("time:hour",)]
    requests = [QueryRequest(WWW, allowed_metrics(d), (START, END), d) for d in dims]
    mobile = (Filter("is", "visit:device", ("mobile",)),)
    requests.append(QueryRequest(WWW, allowed_metrics(("event:page",), mobile), (START, END), ("event:page",), mobile))
    for settings in (data.raw, data.mixed):
        results = Querier(settings).run_many(requests, NOW)
        for request, result in zip(requests, results, strict=True):
            filters = tuple((f.op, f.dimension, f.values) for f in request.filters)
            assert as_dict(result) == truth(data, 1, dimensions=request.dimensions, filters=filters), request


@pytest.mark.parametrize("dimension", [d for d in PUBLIC_DIMENSIONS if not d.startswith("time:")])
def test_a_filter_on_every_dimension_matches_ground_truth(data: Data, dimension: str) -> None:
    # Filtered queries sessionize only the day keys with an event matching each filter by the
    # dimension's event-level expression (aggregator.dimensions.Dimension.event_sql): a wrong
    # expression would drop matching visits here.
    values = sorted(truth(data, 1, dimensions=(dimension,)).items(), key=lambda kv: -kv[1]["visitors"])
    assert values, dimension
    top, second = values[0][0][0], values[min(1, len(values) - 1)][0][0]
    for filters in (
        (("is", dimension, (top, second)),),
        (("is_not", dimension, (top,)),),
        (("contains", dimension, (top[1:4],)),),
    ):
        fs = tuple(Filter(op, d, v) for op, d, v in filters)
        for dims in ((), ("visit:source",), ("event:page",), ("time:day",)):
            got = run(data.raw, dimensions=dims, filters=fs)
            assert as_dict(got) == truth(data, 1, dimensions=dims, filters=filters), (filters, dims)


def test_current_visitors_counts_the_last_minutes_across_midnight_with_k(tmp_path: Path) -> None:
    midnight = int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp())
    now = dt.datetime(2026, 11, 21, 0, 2, tzinfo=dt.UTC)  # the window (23:57, 00:02] spans two UTC days
    evs = [_event("r.example", midnight - 120 + i, 300 + i) for i in range(3)]  # 23:58: in
    evs += [_event("r.example", midnight + 30 + i, 400 + i) for i in range(3)]  # 00:00:30: in
    evs += [_event("r.example", midnight + 31, 400, name="engagement", engaged=5_000)]  # same visitor again
    evs += [_event("r.example", midnight - 400 + i, 500 + i) for i in range(4)]  # 23:53: too old
    evs += [_event("r.example", midnight + 600, 600)]  # after "now" (a clock ahead): not counted
    settings = _lake(tmp_path, evs, 5)
    cur = Querier(settings).current_visitors("r.example", now)
    assert (cur.visitors, cur.minutes, cur.k_anonymity) == (6, 5, 5)
    assert cur.newest == dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.UTC)  # 00:00:32, to the minute
    # Ten minutes: the 23:53 visitors too.
    assert Querier(settings).current_visitors("r.example", now, minutes=10).visitors == 10
    # Under K, the number is withheld (a few minutes' count is not a site total).
    one_minute = Querier(settings).current_visitors("r.example", now, minutes=1)
    assert one_minute.visitors is None and one_minute.k_anonymity == 5
    assert Querier(settings).current_visitors("nobody.example", now).newest is None
    with pytest.raises(QueryError, match="minutes"):
        Querier(settings).current_visitors("r.example", now, minutes=0)


def test_a_filtered_series_shows_its_buckets_of_k_people_when_one_is_under_k(tmp_path: Path) -> None:
    # Chrome: 10 visitors on each of 8 days from Wednesday 2026-11-11 (the range starts mid-week), 2 on the
    # 9th; others: 2 visitors a day the first week (Wed-Sun), 6 a day the next. K = 5.
    first = dt.date(2026, 11, 11)
    evs, key = [], 10_000
    for i in range(9):
        day = first + dt.timedelta(days=i)
        t = int(dt.datetime.combine(day, dt.time(10), dt.UTC).timestamp())
        for n in range(2 if i == 8 else 10):
            key += 1
            evs.append(dataclasses.replace(_event("s.example", t + n, key), browser="Chrome"))
        for n in range(2 if day.isocalendar()[1] == first.isocalendar()[1] else 6):
            key += 1
            evs.append(_event("s.example", t + 100 + n, key))
    settings = _lake(tmp_path, evs, 5)
    chrome = (Filter("is", "visit:browser", ("Chrome",)),)
    end = first + dt.timedelta(days=8)
    got = Querier(settings).run(QueryRequest("s.example", ("visitors",), (first, end), ("time:day",), chrome), NOW)
    # Left out: the 9th day (2 visitors), and the first week's days, each 2 people away from the unfiltered
    # day. The rest is shown: the left-out days together are K people or more (once, they folded everything).
    assert {r.dimensions[0]: r.metrics[0] for r in got.rows} == {"2026-11-16": 10, "2026-11-17": 10, "2026-11-18": 10}
    assert got.suppressed_buckets == [f"2026-11-{d}" for d in (11, 12, 13, 14, 15, 19)]
    # By week: the first, partial week (its label is the range's first day, Wednesday) differs from the
    # unfiltered one by 10 people over 5 days, 2 a day: under K on every day, and not K profiles.
    weeks = Querier(settings).run(QueryRequest("s.example", ("visitors",), (first, end), ("time:week",), chrome), NOW)
    assert {r.dimensions[0]: r.metrics[0] for r in weeks.rows} == {"2026-11-16": 32}
    assert weeks.suppressed_buckets == ["2026-11-11"]
