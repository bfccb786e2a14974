"""A day without a current rollup is rolled up in memory once, equals the built rollup, and is never stale."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from aggregator.dimensions import DIMENSIONS, ROLLUP_DIMENSIONS, ROLLUP_PAIRS
from aggregator.filters import Filter
from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.metrics import COMPONENT_NAMES
from aggregator.query import Querier, QueryRequest, QueryResult
from aggregator.request import allowed_metrics
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests.aggregator.oracle import expected

SITE = "www.onecloud.example"
START = dt.date(2026, 11, 20)
TODAY = dt.date(2026, 11, 22)
NOW = dt.datetime(2026, 11, 22, 18, 0, tzinfo=dt.UTC)
CUT = int(dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC).timestamp())
PAGE = [
    (),
    ("time:day",),
    ("time:week",),
    *((d,) for d in ROLLUP_DIMENSIONS if not DIMENSIONS[d].internal),
    *ROLLUP_PAIRS,  # the "versions" tabs, from the rollups' pair dimensions
]


@pytest.fixture(autouse=True)
def _passes_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aggregator.daycache")


def _passes(caplog: pytest.LogCaptureFixture, kind: str = "rolled up in memory") -> int:
    """Passes over raw files since the last call, as the querier logs them (one line per site and pass), or
    (``kind``) over the tables it kept; the records counted are cleared."""
    counted = [r for r in caplog.records if r.name == "aggregator.daycache" and r.getMessage().startswith(kind)]
    for r in counted:
        caplog.records.remove(r)
    return len(counted)


def _setup(tmp_path: Path) -> tuple[Settings, list[Event], list[Event]]:
    events = [e for e in generate(Traffic(START, 3, {SITE: 40}, seed=5)) if e.ts < CUT + 6 * 3600]
    first = [e for e in events if e.ts < CUT]
    late = [e for e in events if e.ts >= CUT]
    assert first and late
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=1, duckdb_threads=2)
    write_segments(first, settings.sealed_dir, per_segment=300)
    Ingester(settings).run_once()
    return settings, first, late


def _ingest(settings: Settings, events: list[Event]) -> None:
    write_segments(events, settings.sealed_dir, per_segment=300, prefix="late")
    Ingester(settings).run_once()


def _page(q: Querier) -> list[QueryResult]:
    return q.run_many([QueryRequest(SITE, allowed_metrics(dims), (START, TODAY), dims) for dims in PAGE], NOW)


def _check(results: list[QueryResult], events: list[Event]) -> None:
    for res in results:
        got = {r.dimensions: dict(zip(res.request.metrics, r.metrics, strict=True)) for r in res.rows}
        want = expected(events, SITE, START, TODAY, res.request.metrics, dimensions=res.request.dimensions)
        exempt = not res.request.dimensions  # k = 1: rows with no visitors (engagement only) fold away
        shown = {k: row for k, row in want.items() if exempt or row["_visitors"] >= 1}
        assert got == {k: {m: v for m, v in row.items() if not m.startswith("_")} for k, row in shown.items()}, (
            res.request
        )


def _built_rows(settings: Settings, day: dt.date) -> list[tuple[object, ...]]:
    files = Lake.visible_parquet(Lake(settings.lake_dir).rollup_day_dir(SITE, day))
    assert len(files) == 1
    cols = ", ".join(COMPONENT_NAMES)
    rows = duckdb.execute(
        f"SELECT site, day, dimension, value, {cols} FROM read_parquet($f) ORDER BY dimension, value",
        {"f": str(files[0])},
    ).fetchall()
    return [tuple(r) for r in rows]


def test_day_without_rollup_is_computed_once_and_equals_the_built_rollup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, _ = _setup(tmp_path)
    q = Querier(settings)
    for _ in range(3):
        results = _page(q)
        _check(results, first)
        assert results[0].raw_days == 3 and results[0].rollup_days == 0
    assert _passes(caplog) == 1  # all three days in one pass, then reused by every panel and page
    assert refresh_rollups(settings, NOW, today=True) == 3
    for day in (START, START + dt.timedelta(days=1), TODAY):
        computed = q.rollups.computed_rows(SITE, day)
        assert computed and computed == _built_rows(settings, day)
    # Now built: a fresh querier reads the files and gives the same answers.
    fresh = Querier(settings)
    results = _page(fresh)
    _check(results, first)
    assert results[0].rollup_days == 3 and _passes(caplog) == 0


def test_a_day_whose_files_changed_is_computed_again_never_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, late = _setup(tmp_path)
    assert refresh_rollups(settings, NOW, today=True) == 3
    q = Querier(settings)
    _check(_page(q), first)
    assert _passes(caplog) == 0  # everything from built rollups
    # A batch lands in today: its built rollup is stale, so today is computed in memory from the new files.
    _ingest(settings, late)
    results = _page(q)
    _check(results, first + late)
    assert results[0].rollup_days == 2 and results[0].raw_days == 1
    assert _passes(caplog) == 1
    before = q.rollups.computed_rows(SITE, TODAY)
    # Another batch: today's in-memory rows are replaced, not reused.
    extra = [dataclasses.replace(e, ts=e.ts + 60, day_key=e.day_key + 1) for e in late[:20]]
    _ingest(settings, extra)
    results = _page(q)
    _check(results, first + late + extra)
    assert _passes(caplog) == 1
    after = q.rollups.computed_rows(SITE, TODAY)
    assert after != before
    # Once rebuilt, the built rollup equals what was computed in memory.
    assert refresh_rollups(settings, NOW, today=True) == 1
    assert after == _built_rows(settings, TODAY)
    _check(_page(Querier(settings)), first + late + extra)


def test_threads_share_one_computation_and_get_the_same_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, _ = _setup(tmp_path)
    q = Querier(settings)
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: _page(q), range(4)))
    for results in pages:
        _check(results, first)
    assert _passes(caplog) == 1


def test_a_page_computes_only_its_dimensions_and_a_later_page_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, _ = _setup(tmp_path)
    q = Querier(settings)
    some = [QueryRequest(SITE, allowed_metrics(d), (START, TODAY), d) for d in [(), ("visit:source",), ("event:page",)]]
    results = q.run_many(some, NOW)
    _check(results, first)
    assert _passes(caplog) == 1
    assert {r[2] for r in q.rollups.computed_rows(SITE, TODAY)} == {"", "visit:source", "event:page"}
    _check(q.run_many(some, NOW), first)
    assert _passes(caplog) == 0
    _check(_page(q), first)  # every dimension: the rest computed once, from the day's kept tables
    assert _passes(caplog, "rolled up again from cached tables") == 1
    assert _passes(caplog) == 0  # no second pass over the raw files
    assert refresh_rollups(settings, NOW, today=True) == 3
    assert q.rollups.computed_rows(SITE, TODAY) == _built_rows(settings, TODAY)


def test_a_visit_whose_own_columns_change_midway_counts_as_per_event(tmp_path: Path) -> None:
    # Rollups expand visit dimensions over visits, grouping on the event's own columns. Those are constant
    # within a day key in practice, but reverse DNS can fail for one event and not the next, or the ISP
    # database be replaced mid-visit: such a visit must count under both values, exactly as per event.
    events = list(generate(Traffic(START, 1, {SITE: 40}, seed=9)))
    changed = [
        dataclasses.replace(e, network_domain="example-isp.net", isp="Other ISP") if i % 3 == 0 else e
        for i, e in enumerate(events)
    ]
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=1, duckdb_threads=2)
    write_segments(changed, settings.sealed_dir, per_segment=300)
    Ingester(settings).run_once()
    dims = [(), ("visit:network_domain",), ("visit:isp",), ("visit:source",), ("event:page",)]
    requests = [QueryRequest(SITE, allowed_metrics(d), (START, TODAY), d) for d in dims]
    results = Querier(settings).run_many(requests, NOW)  # computed in memory
    _check(results, changed)
    assert {r.dimensions[0] for r in results[1].rows} == {"example-isp.net", "(none)"}
    assert refresh_rollups(settings, NOW) >= 1
    built = Querier(settings).run_many(requests, NOW)
    assert built[0].rollup_days >= 1
    _check(built, changed)


def test_rollup_max_stale_answers_from_the_previous_rollup_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, late = _setup(tmp_path)
    assert refresh_rollups(settings, NOW, today=True) == 3
    _ingest(settings, late)  # today's built rollup now lags one batch
    stale = dataclasses.replace(settings, rollup_max_stale=60)
    q = Querier(stale)
    results = _page(q)
    _check(results, first)  # exact as of the previous batch
    assert _passes(caplog) == 0 and results[0].rollup_days == 3
    as_of = results[0].stale_as_of
    assert as_of is not None and abs(as_of.timestamp() - time.time()) < 60
    # Per call, exact (the Stats API and exports): today rolled up in memory from its current files.
    _check(
        q.run_many(
            [QueryRequest(SITE, allowed_metrics(dims), (START, TODAY), dims) for dims in PAGE], NOW, max_stale=0
        ),
        first + late,
    )
    # What a rollup cannot answer (filters, time:hour) reads the current files: never stale.
    keep_all = (Filter("is_not", "event:page", ("/nowhere",)),)
    metrics = allowed_metrics((), keep_all)
    filtered = q.run(QueryRequest(SITE, metrics, (START, TODAY), filters=keep_all), NOW)
    assert filtered.stale_as_of is None
    want = expected(first + late, SITE, START, TODAY, metrics, filters=(("is_not", "event:page", ("/nowhere",)),))
    assert filtered.rows[0].metrics == tuple(want[()][m] for m in metrics)
    # Older than the limit: computed in memory from the current files, exact.
    for path in Lake(settings.lake_dir).rollups_dir.rglob("*.parquet"):
        os.utime(path, (time.time() - 120, time.time() - 120))
    _passes(caplog)  # the exact calls above computed today in q; fresh starts from nothing
    fresh = Querier(stale)
    results = _page(fresh)
    _check(results, first + late)
    assert results[0].stale_as_of is None and _passes(caplog) == 1


def test_a_rollup_from_before_pair_dimensions_is_not_used_for_them(tmp_path: Path) -> None:
    settings, first, _ = _setup(tmp_path)
    assert refresh_rollups(settings, NOW, today=True) == 3
    lake = Lake(settings.lake_dir)
    # The first day as an install upgraded after its raw events were purged: a format-1 rollup, no raw files.
    (built,) = Lake.visible_parquet(lake.rollup_day_dir(SITE, START))
    old = built.with_name(built.name.replace("-f2.parquet", ".parquet"))
    duckdb.execute(
        f"COPY (SELECT * FROM read_parquet('{built}') WHERE NOT starts_with(dimension, 'pair:')) TO '{old}' "
        "(FORMAT parquet)"
    )
    built.unlink()
    for f in lake.event_files(SITE, START):
        f.unlink()
    q = Querier(settings)
    pair, single = q.run_many(
        [
            QueryRequest(SITE, ("visitors",), (START, TODAY), ("visit:browser", "visit:browser_version")),
            QueryRequest(SITE, ("visitors",), (START, TODAY), ("visit:browser",)),
        ],
        NOW,
    )
    assert pair.rollup_days == 2 and any("only daily aggregates left" in w for w in pair.warnings)
    assert single.rollup_days == 3 and not single.warnings
    # The pair rows cover the other two days only; the single dimension all three.
    rest = [e for e in first if dt.datetime.fromtimestamp(e.ts, dt.UTC).date() != START]
    want = expected(rest, SITE, START, TODAY, ("visitors",), dimensions=("visit:browser", "visit:browser_version"))
    assert {r.dimensions: r.metrics[0] for r in pair.rows} == {k: v["visitors"] for k, v in want.items()}
