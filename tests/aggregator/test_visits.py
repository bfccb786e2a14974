"""The per-visit table: equal to the oracle's sessionization on adversarial lakes, built exactly once, crash-safe."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import duckdb
import pytest

from aggregator.filters import Filter
from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.query import Querier, QueryRequest
from aggregator.request import allowed_metrics
from aggregator.rollup import BUILT_KINDS, ROLLUP_FAILPOINTS, rollup_name, visits_name
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests.aggregator.conftest import run_cli
from tests.aggregator.oracle import expected, visits_of
from tests.events import make_event

SITE = "www.onecloud.example"
DAY = dt.date(2026, 11, 20)
T0 = int(dt.datetime.combine(DAY, dt.time(8), dt.UTC).timestamp())
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def _ev(key: int, at: int, name: str = "pageview", path: str = "/", **kw: object) -> Event:
    engaged = kw.pop("engaged_ms", 12_000 if name == "engagement" else None)
    return make_event(site=SITE, ts=T0 + at, day_key=key, name=name, path=path, engaged_ms=engaged, **kw)


def _names(files: list[Path]) -> list[str]:
    return sorted(visits_name(files, kind) for kind in BUILT_KINDS)


def adversarial() -> list[Event]:
    evs: list[Event] = []
    # Gaps of 1799, 1800 and 1801 s: one visit, one visit, two visits (a gap *over* 30 minutes splits).
    for key, gap in ((1, 1799), (2, 1800), (3, 1801)):
        evs += [_ev(key, 0, path="/a"), _ev(key, gap, path="/b")]
    # Duplicate timestamps, a pageview and a custom event in the same second.
    evs += [_ev(4, 10, path="/x"), _ev(4, 10, name="File Download", path="/x"), _ev(4, 10, path="/y")]
    # Engagement only (a tab left open after midnight, or a visit whose pageview was dropped).
    evs += [_ev(5, 50, name="engagement", path="/z", scroll_depth=40)]
    # A visit whose own columns change midway (the ISP database replaced between two events).
    evs += [_ev(6, 0, path="/p", isp="Old ISP", asn=1), _ev(6, 60, path="/q", isp="New ISP", asn=2)]
    # Many visits of one key across the day, with engagement between.
    for i in range(4):
        evs += [_ev(7, i * 4000, path=f"/v{i}"), _ev(7, i * 4000 + 20, name="engagement", path=f"/v{i}")]
    # A bounce (one pageview, under 10 s engaged) and a non-bounce (one pageview, 12 s engaged).
    evs += [_ev(8, 0, path="/solo"), _ev(8, 5, name="engagement", path="/solo", engaged_ms=3_000)]
    evs += [_ev(9, 0, path="/solo"), _ev(9, 5, name="engagement", path="/solo")]
    # Just before midnight and just after: two days, two keys (the key changes at midnight).
    late = int(dt.datetime.combine(DAY, dt.time(23, 59, 50), dt.UTC).timestamp()) - T0
    evs += [_ev(10, late, path="/late"), _ev(11, late + 20, path="/early")]
    return evs


def _lake(tmp_path: Path, batches: list[list[Event]]) -> Settings:
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=1, duckdb_threads=2)
    for i, batch in enumerate(batches):
        write_segments(batch, settings.sealed_dir, per_segment=3, prefix=f"b{i}")
        Ingester(settings).run_once()
    return settings


def _table(settings: Settings) -> set[tuple[object, ...]]:
    """The per-visit table as built, its codes read back through the day's dictionary."""
    base = Lake(settings.lake_dir).visits_dir
    visits = sorted(str(p) for p in base.rglob("*-visits-v*.parquet"))
    dictionary = sorted(str(p) for p in base.rglob("*-dict-v*.parquet"))
    rows = duckdb.execute(
        """SELECT v.day, v.day_key, epoch(v_start)::BIGINT, epoch(v_end)::BIGINT, e.value, x.value, i.value,
                  n_pv, n_ev, coalesce(eng, 0), is_bounce, v_dur, key_rows, visit_rows
           FROM read_parquet($v) v
           JOIN read_parquet($d) e ON e.day = v.day AND e.dimension = 'visit:entry_page' AND e.code = v.c_entry_page
           JOIN read_parquet($d) x ON x.day = v.day AND x.dimension = 'visit:exit_page' AND x.code = v.c_exit_page
           JOIN read_parquet($d) i ON i.day = v.day AND i.dimension = 'visit:isp' AND i.code = v.c_isp""",
        {"v": visits, "d": dictionary},
    ).fetchall()
    return {tuple(r) for r in rows}


def _oracle(events: list[Event]) -> set[tuple[object, ...]]:
    """The same rows from the plain-Python sessionization (one per visit and ISP, the parts)."""
    visits = {id(v): v for _, v in visits_of(events)}.values()
    key_rows: dict[tuple[dt.date, int], int] = {}
    parts = []
    for v in visits:
        isps = sorted({e.isp or "" for e in v.events})
        for isp in isps:
            own = [e for e in v.events if (e.isp or "") == isp]
            pageviews = sum(1 for e in own if e.name == "pageview")
            counted = sum(1 for e in own if e.name != "engagement")
            eng = sum(min(e.engaged_ms or 0, 1_800_000) for e in own if e.name == "engagement")
            parts.append((v, isp or "(none)", pageviews, counted, eng, len(isps)))
            key_rows[(v.day, v.key)] = key_rows.get((v.day, v.key), 0) + 1
    return {
        (
            v.day,
            v.key,
            v.events[0].ts,
            v.events[-1].ts,
            v.entry.path,
            v.exit.path,
            isp,
            pv,
            ev,
            eng,
            v.bounce,
            v.duration,
            key_rows[(v.day, v.key)],
            n,
        )  # fmt: skip
        for v, isp, pv, ev, eng, n in parts
    }


def test_the_per_visit_table_equals_the_oracles_sessionization(tmp_path: Path) -> None:
    events = adversarial()
    # Two ingest batches, split inside visits: a visit across a batch is still one visit.
    settings = _lake(tmp_path, [events[::2], events[1::2]])
    assert refresh_rollups(settings, NOW) == 2
    assert _table(settings) == _oracle(events)
    # Every metric of every visit dimension, from the per-visit table under a filter, equals the oracle.
    keep = ("is_not", "visit:browser", ("none such",))
    for dim in ("visit:entry_page", "visit:exit_page", "visit:isp", "time:day"):
        got = Querier(settings).run(
            QueryRequest(SITE, allowed_metrics((dim,)), (DAY, DAY + dt.timedelta(days=1)), (dim,), (Filter(*keep),)),
            NOW,
        )
        want = expected(events, SITE, DAY, DAY + dt.timedelta(days=1), got.request.metrics, (dim,), (keep,))
        assert {r.dimensions: list(r.metrics) for r in got.rows} == {
            k: [v[m] for m in got.request.metrics] for k, v in want.items() if v["_visitors"] > 0
        }, dim


def test_built_once_with_the_rollup_and_rebuilt_only_when_the_day_changes(tmp_path: Path) -> None:
    settings = _lake(tmp_path, [adversarial()])
    assert refresh_rollups(settings, NOW) == 2
    lake = Lake(settings.lake_dir)
    before = {p: p.stat().st_mtime_ns for p in lake.visits_dir.rglob("*.parquet")}
    assert refresh_rollups(settings, NOW) == 0  # nothing changed: nothing rebuilt
    assert {p: p.stat().st_mtime_ns for p in lake.visits_dir.rglob("*.parquet")} == before
    # A late event lands in the first day: that day's rollup and visits are rebuilt (new names), nothing else.
    write_segments([_ev(99, 30)], settings.sealed_dir, prefix="late")
    Ingester(settings).run_once()
    assert refresh_rollups(settings, NOW) == 1
    files = lake.event_files(SITE, DAY)
    assert [p.name for p in Lake.visible_parquet(lake.visits_day_dir(SITE, DAY))] == _names(files)
    assert [p.name for p in Lake.visible_parquet(lake.rollup_day_dir(SITE, DAY))] == [rollup_name(files)]


@pytest.mark.parametrize("point", ROLLUP_FAILPOINTS)
def test_kill_at_any_step_of_a_build_then_rerun(tmp_path: Path, point: str) -> None:
    events = generate(Traffic(DAY, 2, {SITE: 25}, seed=4))
    settings = _lake(tmp_path, [events])
    killed = run_cli(settings, "rollup", env={"ANALYTICS_ROLLUP_FAILPOINT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = run_cli(settings, "rollup")
    assert done.returncode == 0, done.stderr
    lake = Lake(settings.lake_dir)
    for day in lake.event_days(SITE):
        files = lake.event_files(SITE, day)
        # exactly the current files, never a partial or a stale one beside them
        assert [p.name for p in Lake.visible_parquet(lake.visits_day_dir(SITE, day))] == _names(files)
        assert [p.name for p in Lake.visible_parquet(lake.rollup_day_dir(SITE, day))] == [rollup_name(files)]
    q = Querier(settings)
    for dims in ((), ("visit:source",), ("event:page",)):
        got = q.run(QueryRequest(SITE, allowed_metrics(dims), (DAY, DAY + dt.timedelta(days=2)), dims), NOW)
        want = expected(events, SITE, DAY, DAY + dt.timedelta(days=2), got.request.metrics, dims)
        assert {r.dimensions: list(r.metrics) for r in got.rows} == {
            k: [v[m] for m in got.request.metrics] for k, v in want.items() if not dims or v["_visitors"] > 0
        }
