"""Daily slices (aggregator/slices.py): built with the tables, read for one value of a slice dimension, and
exactly what the per-visit tables answer (and the oracle) for every column, privacy rules included."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from aggregator.dimensions import SLICE_COLUMNS, SLICE_DIMENSIONS
from aggregator.filters import And, Expr, Filter, Not, Or
from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.query import Querier, QueryRequest, QueryResult
from aggregator.request import allowed_metrics
from aggregator.retention import purge
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests.aggregator.oracle import expected
from tests.aggregator.test_fused import probes
from tests.events import make_event

WWW = "www.onecloud.example"
START = dt.date(2026, 11, 20)
END = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC)
T0 = int(dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC).timestamp())
#: What the request asks in the probes' tests (its neighbours: the visitors).
METRICS = ("visitors", "pageviews", "bounce_rate", "visit_duration")
#: Columns asked under each slice value: every column a slice holds, and some it does not (read from the tables).
COLUMNS: list[tuple[str, ...]] = [
    (),
    *((x,) for x in SLICE_COLUMNS),
    ("time:day",),
    ("time:hour",),
    ("visit:browser", "visit:browser_version"),
]


def _adversarial() -> list[Event]:
    """Visits at the edges: 1799/1800/1801 s gaps, one second twice, engagement only, odd values."""

    def ev(key: int, at: int, **kw: object) -> Event:
        return make_event(site=WWW, ts=T0 + at, day_key=900_000 + key, **kw)

    evs: list[Event] = []
    for key, gap in ((1, 1799), (2, 1800), (3, 1801)):
        evs += [ev(key, 0, path="/a", browser="Edge"), ev(key, gap, path="/b", browser="Edge")]
    evs += [ev(4, 10, path="/x", os="iOS"), ev(4, 10, name="File Download", path="/x", os="iOS")]
    evs += [ev(5, 50, name="engagement", path="/z", scroll_depth=40, device="tablet")]
    # Values a JSON pair must carry unchanged.
    evs += [ev(6, 0, path='/q"uote\\back/ü', browser='Br"ow\\ser', channel="Organic Search")]
    evs += [ev(7, 0, path="/solo"), ev(7, 5, name="engagement", path="/solo", engaged_ms=12_000, scroll_depth=70)]
    return evs


@dataclasses.dataclass
class Lakes:
    events: list[Event]
    sliced: Settings  # every day built, today included: slices answer
    plain: Settings  # the same files without the slices: the tables answer


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> Lakes:
    events = generate(Traffic(START, 3, {WWW: 60}, seed=11)) + _adversarial()
    base = tmp_path_factory.mktemp("slices")
    sliced = Settings(data_dir=base / "sliced", k_anonymity=1, duckdb_threads=2)
    write_segments(events, sliced.sealed_dir, per_segment=500)
    Ingester(sliced).run_once()
    assert refresh_rollups(sliced, NOW, today=True) == 4
    plain = dataclasses.replace(sliced, data_dir=base / "plain")
    shutil.copytree(sliced.data_dir, plain.data_dir)
    removed = [p for p in Lake(plain.lake_dir).visits_dir.rglob("*-slices-*.parquet")]
    assert len(removed) == 4
    for p in removed:
        p.unlink()
    return Lakes(events, sliced, plain)


def _page(settings: Settings, filters: tuple[Expr, ...], k: int) -> list[QueryResult]:
    requests = [
        QueryRequest(WWW, allowed_metrics(dims, filters), (START, END), dims, filters=filters) for dims in COLUMNS
    ]
    return Querier(dataclasses.replace(settings, k_anonymity=k)).run_many(requests, NOW)


def _rows(result: QueryResult) -> list[tuple[object, ...]]:
    return [(r.dimensions, r.metrics) for r in result.rows] + [
        (result.folded_rows, result.other_suppressed, result.suppressed, result.suppressed_buckets)
    ]


def _values(settings: Settings, dimension: str) -> list[str]:
    got = Querier(settings).run(QueryRequest(WWW, ("visitors",), (START, END), (dimension,)), NOW)
    return [r.dimensions[0] for r in got.rows]


@pytest.mark.parametrize("dimension", SLICE_DIMENSIONS)
def test_a_slice_answers_every_column_as_the_tables_do(lakes: Lakes, dimension: str) -> None:
    values = _values(lakes.sliced, dimension)
    assert len(values) >= 2
    # The largest value, the smallest (its rows fold, so the probes read the tables), and one not there.
    for value in [values[0], values[-1], "no such value"]:
        filters: tuple[Expr, ...] = (Filter("is", dimension, (value,)),)
        got, want = _page(lakes.sliced, filters, 3), _page(lakes.plain, filters, 3)
        assert [_rows(r) for r in got] == [_rows(r) for r in want], value


@pytest.mark.parametrize("dimension", SLICE_DIMENSIONS)
def test_a_slice_matches_the_oracle(lakes: Lakes, dimension: str) -> None:
    value = _values(lakes.sliced, dimension)[-1]  # the smallest: the most edge cases relative to its size
    filters = (("is", dimension, (value,)),)
    for dims, got in zip(COLUMNS, _page(lakes.sliced, (Filter(*filters[0]),), 1), strict=True):
        # Time on page left out: on this traffic the oracle's differs for tablets with no filter at all (the
        # rollups' figure, not the slices'); the test above holds the slices to the tables' figure exactly.
        metrics = [m for m in got.request.metrics if m != "time_on_page"]
        want = expected(lakes.events, WWW, START, END, tuple(metrics), dimensions=dims, filters=filters)
        rows = {r.dimensions: {m: v for m, v in zip(got.request.metrics, r.metrics, strict=True) if m in metrics}
                for r in got.rows}  # fmt: skip
        # No visitor, no row (an engagement-only group); the totals are shown all the same.
        assert rows == {key: {m: row[m] for m in metrics} for key, row in want.items() if row["_visitors"] or not dims}


def _scaled_copy(lakes: Lakes, tmp_path: Path) -> Settings:
    """The sliced lake with every visitors figure of its slices ten times what it is."""
    settings = dataclasses.replace(lakes.sliced, data_dir=tmp_path / "scaled")
    shutil.copytree(lakes.sliced.data_dir, settings.data_dir)
    for p in Lake(settings.lake_dir).visits_dir.rglob("*-slices-*.parquet"):
        tmp = p.with_suffix(".tmp")
        duckdb.execute(
            f"COPY (SELECT * REPLACE (visitors * 10 AS visitors) FROM read_parquet('{p}')) TO '{tmp}' (FORMAT parquet)"
        )
        tmp.replace(p)
    return settings


def test_a_page_filtered_on_cells_reads_the_slices(lakes: Lakes, tmp_path: Path) -> None:
    scaled = _scaled_copy(lakes, tmp_path)
    browser, other = _values(lakes.sliced, "visit:browser")[:2]
    one = (Filter("is", "visit:browser", (browser,)),)

    def visitors(settings: Settings, filters: tuple[Expr, ...], dims: tuple[str, ...] = ()) -> list[float]:
        got = Querier(settings).run(QueryRequest(WWW, ("visitors",), (START, END), dims, filters=filters), NOW)
        return [r.metrics[0] for r in got.rows]

    # Any filter on browser, OS and device alone selects whole cells: ten times the visitors here.
    for filters, dims in [
        (one, ()),
        (one, ("visit:source",)),
        (one, ("visit:browser",)),
        ((Filter("is", "visit:browser", (browser, other)),), ()),
        ((Filter("is_not", "visit:browser", (browser,)),), ()),
        ((Filter("is", "visit:browser", (browser.lower(),), case_sensitive=False),), ()),
        ((Or((Filter("is", "visit:browser", (browser,)), Filter("is", "visit:os", ("iOS",)))),), ()),
        ((Filter("contains", "visit:os", ("i",)), Not(Filter("is", "visit:device", ("tablet",)))), ()),
    ]:
        assert visitors(scaled, filters, dims) == [10 * v for v in visitors(lakes.sliced, filters, dims)], filters
    # Anything else comes from the tables: another dimension, a condition on events, hours.
    for filters, dims in [
        ((Filter("is", "visit:source", ("Google",)),), ()),
        ((*one, Filter("contains", "event:page", ("/",))), ()),
        ((Or((*one, Filter("is", "visit:channel", ("Direct",)))),), ()),
        (one, ("time:hour",)),
        (one, ("visit:browser", "visit:browser_version")),
    ]:
        assert visitors(scaled, filters, dims) == visitors(lakes.plain, filters, dims), filters
    # A day without its slices (built before them, or removed): the whole range is read from the tables.
    next(Lake(scaled.lake_dir).visits_dir.rglob("*-slices-*.parquet")).unlink()
    assert visitors(scaled, one) == visitors(lakes.plain, one)


@pytest.mark.parametrize(
    "filters",
    [
        (Filter("is", "visit:browser", ("Chrome", "Safari", "Edge")),),
        (Filter("is_not", "visit:os", ("Windows", "iOS")),),
        (Filter("contains", "visit:browser", ("fire", "EDG"), case_sensitive=False),),
        (Filter("matches", "visit:os", ("^(Mac|i)OS$",)), Filter("contains_not", "visit:device", ("mob",))),
        (
            Not(
                And(
                    (
                        Filter("is", "visit:browser", ("Chrome",)),
                        Or((Filter("is", "visit:os", ("Android",)), Filter("is", "visit:device", ("tablet",)))),
                    )
                )
            ),
        ),
        (Filter("matches_not", "visit:browser", ("^Chrom",)),),
    ],
    ids=["is-many", "is-not", "contains-i", "matches-and-not", "nested", "matches-not"],
)
def test_every_operator_on_cells_answers_as_the_tables_do(lakes: Lakes, filters: tuple[Expr, ...]) -> None:
    got, want = _page(lakes.sliced, filters, 3), _page(lakes.plain, filters, 3)
    assert [_rows(r) for r in got] == [_rows(r) for r in want]
    assert got[0].rows and got[0].rows[0].metrics[0] > 0  # not an empty segment


def test_a_day_where_a_visitor_is_in_two_cells_is_read_from_the_tables(tmp_path: Path) -> None:
    base = [
        make_event(site=WWW, ts=T0 + i * 60, day_key=i % 7, browser=("Chrome", "Firefox")[i % 2]) for i in range(40)
    ]
    # Day key 3 sends Chrome and Firefox (client hints that changed, say): the day's cells would count it twice.
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=1, duckdb_threads=2)
    write_segments(base, settings.sealed_dir)
    Ingester(settings).run_once()
    assert refresh_rollups(settings, NOW, today=True) == 1
    (path,) = Lake(settings.lake_dir).visits_dir.rglob("*-slices-*.parquet")
    assert duckdb.execute(f"SELECT dimension FROM read_parquet('{path}')").fetchall() == [("#inexact",)]
    q = Querier(settings)
    got = q.run(QueryRequest(WWW, ("visitors",), (START, END), filters=(Filter("is_not", "visit:os", ("x",)),)), NOW)
    assert [r.metrics[0] for r in got.rows] == [7]  # each key once (summed cells would give 14)


@pytest.mark.parametrize(
    "filters",
    [
        (Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("Windows",))),
        (Or((Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("iOS",)))),),
        (Filter("is", "visit:device", ("desktop",)), Filter("contains", "event:page", ("/",))),
    ],
    ids=["two", "or", "device-and-page"],
)
def test_neighbours_read_from_slices_decide_as_the_tables_do(lakes: Lakes, filters: tuple[Expr, ...]) -> None:
    for k in (2, 5):
        got, want = _page(lakes.sliced, filters, k), _page(lakes.plain, filters, k)
        assert [_rows(r) for r in got] == [_rows(r) for r in want], k


@pytest.mark.parametrize(
    "filters",
    [
        (Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("Windows",))),
        (Or((Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("iOS",)))),),
        (Filter("is", "visit:browser", ("Chrome", "Safari")), Not(Filter("contains", "visit:device", ("tab",)))),
    ],
    ids=["two", "or", "many-and-not"],
)
def test_neighbours_read_with_the_scope_differ_as_read_alone(lakes: Lakes, filters: tuple[Expr, ...]) -> None:
    q = Querier(lakes.sliced)
    for dims in [(), ("time:day",), ("visit:browser",), ("visit:entry_page",), ("event:page",)]:
        together, alone = (
            probes(q, filters, dims, fused=f, days=(WWW, START, END), metrics=METRICS) for f in (True, False)
        )
        assert together.scope.sliced_with and not alone.scope.sliced_with
        assert [together.scope.slice_fused(o) is not None for o, _ in together._neighbours] == [True] * len(
            together._neighbours
        )
        assert alone.scope.slice_fused(alone._neighbours[0][0]) is None
        for n in range(together.neighbours):
            got, want = together.diffs(n), alone.diffs(n)
            assert {k: d for k, d in got.items() if d.total} == {k: d for k, d in want.items() if d.total}, dims
            assert any(d.total for d in want.values()), dims  # the neighbours do differ
    q.close()


def test_a_neighbour_the_slices_did_not_answer_when_registered_is_compared_by_its_own_rows(lakes: Lakes) -> None:
    # The first request asks hours under Chrome (no slice holds them): Chrome is then a scope of the tables and
    # the second request's neighbour in its pass, while the second request's own rows come from the slices.
    chrome = Filter("is", "visit:browser", ("Chrome",))
    requests = [
        QueryRequest(WWW, ("visitors",), (START, END), ("time:hour",), filters=(chrome,)),
        QueryRequest(
            WWW, ("visitors",), (START, END), ("visit:source",), (chrome, Filter("is", "visit:os", ("Windows",)))
        ),
    ]
    for k in (2, 5):
        got = Querier(dataclasses.replace(lakes.sliced, k_anonymity=k)).run_many(requests, NOW)
        want = Querier(dataclasses.replace(lakes.plain, k_anonymity=k)).run_many(requests, NOW)
        assert [_rows(r) for r in got] == [_rows(r) for r in want], k
        assert got[1].rows, k


def test_a_day_without_slices_is_built_again_and_they_are_purged_with_the_tables(lakes: Lakes, tmp_path: Path) -> None:
    settings = dataclasses.replace(lakes.plain, data_dir=tmp_path / "again")
    shutil.copytree(lakes.plain.data_dir, settings.data_dir)
    visits = Lake(settings.lake_dir).visits_dir
    assert not list(visits.rglob("*-slices-*.parquet"))
    assert refresh_rollups(settings, NOW, today=True) == 4
    assert len(list(visits.rglob("*-slices-*.parquet"))) == 4
    # Each row names its cell: the browser, OS and device of the visits it counts.
    path = next(visits.rglob("*-slices-*.parquet"))
    cols = [r[0] for r in duckdb.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
    assert cols[:7] == ["site", "day", "browser", "os", "device", "dimension", "value"]
    # Past the raw retention they go with the per-visit tables; the rollups stay.
    report = purge(dataclasses.replace(settings, raw_retention_days=1), NOW + dt.timedelta(days=10))
    assert report.visit_days == 4 and not list(visits.rglob("*.parquet"))
    assert len(list(Lake(settings.lake_dir).rollups_dir.rglob("*.parquet"))) == 4
