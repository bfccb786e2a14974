"""The k-anonymity attacks of issue 12, each against a lake built for it: none reveals a group under K.

One crowd of ordinary visitors over a week, plus one person the attacker is
after: a rare browser and system, from a rare network, on five of the seven
days (a new day key each day, by design), reading pages nobody else reads.
Every answer an attacker can combine — rows, totals, filters and their
complements, the same filter with one condition more or less, time buckets —
is checked to reveal no count between 1 and K-1 about that person.
"""

from __future__ import annotations

import datetime as dt
import functools
import random

import pytest

from aggregator.filters import Filter, Not
from aggregator.ingest import Ingester
from aggregator.query import OTHER, Querier, QueryRequest, QueryResult
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.stats_api import answer
from aggregator.synth import write_segments
from collector.schema import Event
from tests.events import make_event

SITE = "attack.example"
K = 5
START = dt.date(2026, 11, 16)
END = dt.date(2026, 11, 22)
NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
PERSON_DAYS = (0, 1, 3, 4, 6)
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
SYSTEMS = ("Windows", "macOS", "Linux", "Android", "iOS")
ISPS = ((3320, "Deutsche Telekom AG"), (7922, "Comcast"), (2856, "BT"), (64600, "Small Fibre Co"))


def _ts(day: int, seconds: int) -> int:
    return int(dt.datetime.combine(START + dt.timedelta(days=day), dt.time(), dt.UTC).timestamp()) + seconds


def _crowd(rng: random.Random) -> list[Event]:
    events = []
    for day in range(7):
        for v in range(40 + 5 * day):
            asn, isp = ISPS[v % 3] if v % 9 else ISPS[3]  # a few of the crowd share the person's small network
            browser, os_ = BROWSERS[v % 4], SYSTEMS[v % 5]
            key = rng.getrandbits(63)
            start = rng.randrange(6 * 3600, 20 * 3600)
            for i, path in enumerate(("/", f"/docs/{v % 6}", "/pricing")[: 1 + v % 3]):
                events.append(
                    make_event(
                        site=SITE,
                        ts=_ts(day, start + 60 * i),
                        path=path,
                        day_key=key,
                        browser=browser,
                        browser_version=str(120 + v % 3),
                        os=os_,
                        device="mobile" if os_ in ("Android", "iOS") else "desktop",
                        asn=asn,
                        isp=isp,
                    )
                )
    return events


def _person(rng: random.Random) -> list[Event]:
    """One person, five days, one device and network: a new day key every day."""
    events = []
    for day in PERSON_DAYS:
        key = rng.getrandbits(63)
        for i, path in enumerate(("/", "/secret/diagnosis", "/secret/clinic-hours")):
            events.append(
                make_event(
                    site=SITE,
                    ts=_ts(day, 3 * 3600 + 120 * i),  # 03:00, when nobody else is around
                    path=path,
                    day_key=key,
                    browser="Opera",
                    browser_version="105",
                    os="Haiku",
                    device="tablet",
                    asn=64600,
                    isp="Small Fibre Co",
                )
            )
    return events


@pytest.fixture(scope="module", params=["tables", "rollups"])
def lake(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Settings:
    """The lake as ingest leaves it (every answer from the per-visit tables), and with its days built (rollups
    and slices: unfiltered answers and filters on browser, OS and device alone read them instead)."""
    rng = random.Random(12)
    settings = Settings(data_dir=tmp_path_factory.mktemp("attack") / "d", k_anonymity=K, duckdb_threads=2)
    write_segments(_crowd(rng) + _person(rng), settings.sealed_dir, per_segment=500)
    Ingester(settings).run_once()
    if request.param == "rollups":
        assert refresh_rollups(settings, NOW, today=True) == 7
    return settings


@functools.cache
def querier(settings: Settings) -> Querier:
    """One querier per lake, as a dashboards process keeps one (its answers and computed days are reused)."""
    return Querier(settings)


def run(
    settings: Settings, dims: tuple[str, ...] = (), filters: tuple[object, ...] = (), fresh: bool = False, **kw: object
) -> QueryResult:
    metrics = kw.pop("metrics", ("visitors",))
    rng = kw.pop("date_range", (START, END))
    request = QueryRequest(SITE, metrics, rng, dims, filters, **kw)  # type: ignore[arg-type]
    return (Querier(settings) if fresh else querier(settings)).run(request, NOW)


def rows(result: QueryResult) -> dict[tuple[str, ...], int]:
    return {r.dimensions: int(r.metrics[0]) for r in result.rows}


def total(settings: Settings, filters: tuple[object, ...] = (), **kw: object) -> int | None:
    result = run(settings, (), filters, **kw)
    return None if result.suppressed else int(result.rows[0].metrics[0])


def assert_no_small_difference(a: int | None, b: int | None) -> None:
    if a is not None and b is not None:
        assert not 1 <= abs(a - b) <= K - 1, (a, b)


DIMS = ("visit:browser", "visit:os", "visit:device", "visit:isp", "visit:asn", "event:page", "visit:browser_version")


@pytest.mark.parametrize("dim", DIMS)
def test_one_person_on_five_days_is_not_five_visitors(lake: Settings, dim: str) -> None:
    # 5 visitor-days would pass K = 5 if visitors were summed; one person on five days is one profile.
    got = rows(run(lake, (dim,)))
    for value in ("Opera", "Haiku", "tablet", "/secret/diagnosis", "/secret/clinic-hours", "105"):
        assert (value,) not in got, (dim, got)
    # The same through the Stats API, as an export would ask it.
    status, body = answer(Querier(lake), {"site_id": SITE, "metrics": ["visitors"], "dimensions": [dim],
                                          "date_range": [START.isoformat(), END.isoformat()]}, NOW)  # fmt: skip
    assert status == 200
    assert not {"Opera", "Haiku", "tablet", "/secret/diagnosis"} & {r["dimensions"][0] for r in body["results"]}


def test_filtering_on_the_person_shows_nothing_about_them(lake: Settings) -> None:
    opera = (Filter("is", "visit:browser", ("Opera",)),)
    for dim in ("visit:isp", "visit:asn", "event:page", "visit:device", "time:day"):
        result = run(lake, (dim,), opera)
        assert result.rows == [] and result.suppressed, dim
    assert run(lake, (), opera).suppressed


def test_total_minus_the_shown_rows_never_reveals_a_hidden_group(lake: Settings) -> None:
    for day in range(7):
        d = START + dt.timedelta(days=day)
        whole = total(lake, date_range=(d, d))
        assert whole is not None
        for dim in ("visit:browser", "visit:os", "visit:device", "visit:isp"):
            result = run(lake, (dim,), date_range=(d, d))
            shown = sum(rows(result).values())  # (other) included when shown
            # each visitor has one value of these: the rows partition the total
            assert_no_small_difference(whole, shown)
            assert shown <= whole


def test_is_against_is_not_and_equivalent_phrasings(lake: Settings) -> None:
    whole = total(lake)
    assert whole is not None
    for filters in (
        (Filter("is_not", "visit:browser", ("Opera",)),),
        (Not(Filter("is", "visit:browser", ("Opera",))),),
        (Filter("contains_not", "visit:browser", ("per",)),),
        (Filter("matches_not", "visit:browser", ("^Op",)),),
        (Filter("is_not", "visit:browser", ("OPERA",), case_sensitive=False),),
        (Filter("is", "visit:browser", BROWSERS),),
        (Filter("is_not", "visit:os", ("Haiku",)),),
        (Filter("is_not", "visit:device", ("tablet",)),),
        (Filter("is_not", "event:page", ("/secret/diagnosis", "/secret/clinic-hours")),),
    ):
        complement = total(lake, filters)
        assert_no_small_difference(whole, complement)
        # and again: the same question gives the same answer (nothing to average)
        assert total(lake, filters) == complement


def test_a_filter_against_the_same_filter_with_one_more_condition(lake: Settings) -> None:
    base = (Filter("is", "visit:isp", ("Small Fibre Co",)),)
    narrower = (*base, Filter("is_not", "visit:device", ("tablet",)))
    assert_no_small_difference(total(lake, base), total(lake, narrower))
    # Row by row too: each page under the network, with and without the person's device.
    wide, narrow = rows(run(lake, ("event:page",), base)), rows(run(lake, ("event:page",), narrower))
    for key in set(wide) & set(narrow):
        if OTHER not in key:
            assert_no_small_difference(wide[key], narrow[key])
    # And a breakdown against the unfiltered one: the person's network minus the desktop part of it.
    unfiltered = rows(run(lake, ("visit:isp",)))
    desktop = rows(run(lake, ("visit:isp",), (Filter("is", "visit:device", ("desktop", "mobile")),)))
    for key in set(unfiltered) & set(desktop):
        if OTHER not in key:
            assert_no_small_difference(unfiltered[key], desktop[key])


def test_two_conditions_on_the_device_against_one(lake: Settings) -> None:
    # Filters on browser, OS and device alone: on the built lake the slices answer them and their neighbours.
    base = (Filter("is_not", "visit:os", ("Linux",)),)
    narrower = (*base, Filter("is_not", "visit:device", ("tablet",)))  # the person's device, nobody else's
    assert_no_small_difference(total(lake, base), total(lake, narrower))
    for dim in ("event:page", "visit:isp", "time:day"):
        wide, narrow = rows(run(lake, (dim,), base)), rows(run(lake, (dim,), narrower))
        for key in set(wide) | set(narrow):
            if OTHER not in key:
                assert_no_small_difference(wide.get(key), narrow.get(key))


def test_other_carries_the_exact_distinct_visitors_and_never_exceeds_the_total(lake: Settings) -> None:
    for day in range(7):
        d = START + dt.timedelta(days=day)
        whole = total(lake, date_range=(d, d))
        assert whole is not None
        got = rows(run(lake, ("event:page",), date_range=(d, d)))
        if (OTHER,) in got:
            assert got[(OTHER,)] <= whole


def test_time_buckets_under_k_are_left_out_never_named_other(lake: Settings) -> None:
    d = START + dt.timedelta(days=PERSON_DAYS[0])
    # Unfiltered: a site's time series is exempt, every hour as it is (the person's 03:00 included).
    hours = run(lake, ("time:hour",), date_range=(d, d))
    assert (OTHER,) not in rows(hours)
    assert rows(hours)[(f"{d.isoformat()} 03:00:00",)] == 1
    # Filtered: an hour under K is left out and listed as such, never folded into a bucket named "(other)".
    tablets = run(lake, ("time:hour",), (Filter("is", "visit:device", ("desktop",)),), date_range=(d, d))
    assert (OTHER,) not in rows(tablets)
    assert all(v >= K for v in rows(tablets).values())
    assert tablets.suppressed_buckets
    kpi = total(lake, (Filter("is", "visit:device", ("desktop",)),), date_range=(d, d))
    assert_no_small_difference(kpi, sum(rows(tablets).values()))


@pytest.mark.slow
def test_the_answers_do_not_depend_on_asking_again(lake: Settings) -> None:
    requests = [((d,), f) for d in DIMS for f in ((), (Filter("is", "visit:device", ("desktop",)),))]
    first = [rows(run(lake, d, f)) for d, f in requests]
    assert [rows(run(lake, d, f)) for d, f in requests] == first  # the same querier: its kept answers
    assert [rows(run(lake, d, f, fresh=True)) for d, f in requests] == first  # a new process's


def test_the_crowd_is_still_shown(lake: Settings) -> None:
    # The rules hide the person, not the web team's numbers. The cost: alone in (other), the person would be
    # total minus the rows, so the smallest shown browser (Edge) joins them there.
    browsers = rows(run(lake, ("visit:browser",)))
    assert {"Chrome", "Firefox", "Safari"} <= {k[0] for k in browsers}
    assert ("Edge",) not in browsers and browsers[(OTHER,)] > browsers[("Chrome",)] // 2
    pages = rows(run(lake, ("event:page",)))
    assert {("/",), ("/pricing",)} <= set(pages)
