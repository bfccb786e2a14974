"""The lake on a real S3 server (SeaweedFS): exactly-once ingest, the same answers as on disk, chDB reads it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from aggregator.filters import Filter
from aggregator.ingest import FAILPOINTS, Ingester
from aggregator.lake import Lake, file_bytes
from aggregator.query import Querier, QueryRequest
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests import web
from tests.aggregator.conftest import identity, run_cli
from tests.scaleout.servers import SeaweedFS

WWW = "www.onecloud.example"
START = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
TRAFFIC = Traffic(START, 3, {WWW: 60, "docs.onecloud.example": 15}, seed=11)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return generate(TRAFFIC)


_n = 0


def s3_settings(s3: SeaweedFS, data_dir: Path) -> Settings:
    global _n
    _n += 1  # a fresh prefix per lake: tests share the bucket
    env = {**s3.env(), "ANALYTICS_LAKE_URL": f"s3://lake/t{_n}-{data_dir.parent.name}"}
    return Settings.from_env({**env, "ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_DUCKDB_THREADS": "2"})


def cli_env(settings: Settings) -> dict[str, str]:
    from onecloud_kit.settings import env_name

    return {env_name(f.name): str(getattr(settings, f.name)) for f in dataclasses.fields(settings) if "s3" in f.name
            or f.name in ("lake_url", "spool_url")}  # fmt: skip


def lake_events(settings: Settings) -> Counter[tuple[object, ...]]:
    from aggregator.db import connect
    from aggregator.lake import Lake

    lake = Lake(settings.lake_dir)
    files = [str(f) for s in lake.site_dirs(lake.events_dir) for d in Lake.days_in(s)
             for f in Lake.visible_parquet(s / f"day={d.isoformat()}")]  # fmt: skip
    if not files:
        return Counter()
    con = connect(settings)
    rows = con.execute(
        "SELECT site, CAST(epoch(ts) AS BIGINT), name, path, day_key, engaged_ms FROM read_parquet(?)", [files]
    ).fetchall()
    return Counter(tuple(r) for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["staged", "committed", "published-one", "deleted-one"])
def test_kill_during_s3_ingest_then_rerun_loses_and_doubles_nothing(
    s3: SeaweedFS, tmp_path: Path, events: list[Event], point: str
) -> None:
    assert set(FAILPOINTS) >= {point}
    settings = s3_settings(s3, tmp_path / "data")
    write_segments(events, settings.sealed_dir, per_segment=200)
    env = {**cli_env(settings), "ANALYTICS_INGEST_BATCH_BYTES": "150000"}
    killed = run_cli(settings, "ingest", env={**env, "ANALYTICS_INGEST_FAILPOINT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sum(lake_events(settings).values()) <= len(events)
    done = run_cli(settings, "ingest", env=env)
    assert done.returncode == 0, done.stderr
    assert lake_events(settings) == Counter(identity(e) for e in events)
    assert not list(settings.sealed_dir.glob("*.jsonl"))
    # Nothing under the lake's prefix but committed, published data.
    import pyarrow.fs as pafs

    infos = s3.filesystem().get_file_info(  # type: ignore[attr-defined]
        pafs.FileSelector(settings.lake_url.removeprefix("s3://"), recursive=True)
    )
    keys = [i.path for i in infos if i.type == pafs.FileType.File]
    assert keys and all("/events/" in k and k.endswith(".parquet") for k in keys), keys


def _overview(settings: Settings) -> list[object]:
    q = Querier(settings)
    try:
        out: list[object] = []
        # Unfiltered (rollups) and filtered (the per-visit table and the events): both read from S3 alike.
        for filters in ((), (Filter("is_not", "visit:device", ("tablet",)),)):
            for dims in ((), ("time:day",), ("event:page",), ("visit:source",), ("visit:browser",)):
                metrics = ("visitors", "visits", "pageviews") + (("bounce_rate",) if dims != ("event:page",) else ())
                r = q.run(QueryRequest(WWW, metrics, (START, NOW.date()), dims, filters), NOW)
                out.append([(row.dimensions, row.metrics) for row in r.rows])
        return out
    finally:
        q.close()


@pytest.mark.slow
def test_s3_lake_answers_like_the_local_lake_and_chdb_agrees(
    s3: SeaweedFS, tmp_path: Path, events: list[Event]
) -> None:
    local = Settings(data_dir=tmp_path / "local", duckdb_threads=2)
    remote = s3_settings(s3, tmp_path / "remote")
    for s in (local, remote):
        write_segments(events, s.sealed_dir, per_segment=300)
        assert Ingester(s).run_once().events == len(events)
    assert _overview(remote) == _overview(local)  # raw events only
    # What the rollup builder batches days by: each raw file's bytes, from one listing of the prefix.
    rl = Lake(remote.lake_dir)
    for day in rl.event_days(WWW):
        files = rl.event_files(WWW, day)
        assert file_bytes(files[0].parent) == {p.name: p.stat().st_size for p in files}  # one request each
        assert all(p.stat().st_size > 0 for p in files)
    for s in (local, remote):
        refresh_rollups(s, NOW)
    assert _overview(remote) == _overview(local)  # closed days from rollups and per-visit tables
    import pyarrow.fs as pafs

    infos = s3.filesystem().get_file_info(  # type: ignore[attr-defined]
        pafs.FileSelector(remote.lake_url.removeprefix("s3://") + "/visits", recursive=True)
    )
    assert [i.path for i in infos if i.type == pafs.FileType.File and "-visits-v" in i.path]
    daily = {
        r.dimensions[0]: r.metrics
        for r in Querier(remote)
        .run(QueryRequest(WWW, ("visitors", "pageviews"), (START, NOW.date()), ("time:day",)), NOW)
        .rows  # fmt: skip
    }
    assert daily == chdb_daily_totals(s3, remote, WWW)


def chdb_daily_totals(s3: SeaweedFS, settings: Settings, site: str) -> dict[str, tuple[int, int]]:
    """A second engine (ClickHouse, in process) reading the same Parquet straight from S3."""
    import chdb

    prefix = settings.lake_url.removeprefix("s3://")
    url = f"{s3.endpoint}/{prefix}/events/site={site}/day=*/*.parquet"
    sql = f"""
        SELECT toString(toDate(ts)) AS day, uniqExact(day_key) AS visitors, countIf(name = 'pageview') AS pageviews
        FROM s3('{url}', '{s3.env()["ANALYTICS_S3_ACCESS_KEY"]}', '{s3.env()["ANALYTICS_S3_SECRET_KEY"]}', 'Parquet')
        GROUP BY day ORDER BY day
    """
    out = chdb.query(sql, "CSV")
    rows = [line.split(",") for line in str(out).strip().splitlines()]
    return {r[0].strip('"'): (int(r[1]), int(r[2])) for r in rows}


def test_duckdb_reads_with_partition_pruning(s3: SeaweedFS, tmp_path: Path, events: list[Event]) -> None:
    settings = s3_settings(s3, tmp_path / "data")
    write_segments(events, settings.sealed_dir, per_segment=300)
    Ingester(settings).run_once()
    from aggregator.lake import Lake

    lake = Lake(settings.lake_dir)
    assert lake.event_days(WWW)[0] == START
    files = lake.event_files(WWW, START)
    assert files and all(str(f).startswith("lakes3://") and f"day={START}" in str(f) for f in files)
    con = duckdb.connect()
    from aggregator.objectstore import register

    register(con, settings.s3().filesystem())
    (n,) = con.execute("SELECT count(*) FROM read_parquet(?)", [[str(f) for f in files]]).fetchone() or (0,)
    assert n == sum(1 for e in events if e.site == WWW and dt.datetime.fromtimestamp(e.ts, dt.UTC).date() == START)


@pytest.mark.slow
def test_retention_and_compaction_on_s3(s3: SeaweedFS, tmp_path: Path) -> None:
    """PRIVACY.md rule 6 holds on object storage too: purged days leave the store."""
    from aggregator.compact import compact_closed_days
    from aggregator.lake import Lake
    from aggregator.retention import purge

    settings = s3_settings(s3, tmp_path / "data")
    start = dt.date(2024, 1, 1)
    # Eight days, 122 apart: two older than the rollups' 25 months, five between that and the raw 90 days, one
    # within them (every kind of purge, with what each keeps), on S3 where each file costs round trips.
    events = [e for d in range(0, 900, 122) for e in generate(Traffic(start + dt.timedelta(days=d), 1, {WWW: 6}, d))]
    write_segments(events, settings.sealed_dir, per_segment=20)
    settings_small = dataclasses.replace(settings, ingest_batch_bytes=4000)  # several files per day
    Ingester(settings_small).run_once()
    now = dt.datetime(2026, 6, 15, 3, 0, tzinfo=dt.UTC)
    compact_closed_days(settings, now)
    lake = Lake(settings.lake_dir)
    assert all(len(lake.event_files(WWW, d)) == 1 for d in lake.event_days(WWW))
    report = purge(settings, now)
    assert report.raw_days > 0 and report.rollup_days > 0
    assert min(lake.event_days(WWW)) >= dt.date(2026, 6, 15) - dt.timedelta(days=90)
    assert min(lake.rollup_days(WWW)) >= dt.date(2024, 5, 15)


def test_shipped_segments_are_ingested_once_even_if_shipped_twice(
    s3: SeaweedFS, tmp_path: Path, events: list[Event]
) -> None:
    import pyarrow.fs as pafs

    from collector.shipper import Shipper, s3_filesystem

    env = s3.env()
    fs = s3_filesystem(env["ANALYTICS_S3_ENDPOINT"], env["ANALYTICS_S3_ACCESS_KEY"], env["ANALYTICS_S3_SECRET_KEY"],
                       "us-east-1", "path")  # fmt: skip
    url = f"s3://spool/{tmp_path.name}"
    host_b = tmp_path / "host-b" / "spool" / "sealed"
    segments = write_segments(events, host_b, per_segment=400)
    keep = tmp_path / "copy"
    keep.mkdir()
    for seg in segments:
        (keep / seg.name).write_bytes(seg.read_bytes())
    assert Shipper(host_b, url, fs).ship_once() == len(segments)
    assert not list(host_b.glob("*.jsonl"))

    settings = dataclasses.replace(s3_settings(s3, tmp_path / "agg"), spool_url=url)
    assert Ingester(settings).run_once().events == len(events)
    prefix = url.removeprefix("s3://")
    assert not fs.get_file_info(pafs.FileSelector(prefix, allow_not_found=True))  # deleted after the commit
    # A collector that died between its upload and deleting its copy ships everything again.
    for seg in keep.iterdir():
        (host_b / seg.name).write_bytes(seg.read_bytes())
    Shipper(host_b, url, fs).ship_once()
    assert Ingester(settings).run_once().events == 0
    assert lake_events(settings) == Counter(identity(e) for e in events)
    assert not fs.get_file_info(pafs.FileSelector(prefix, allow_not_found=True))


def test_collector_ships_its_last_segment_when_it_stops(s3: SeaweedFS, tmp_path: Path, isp_db: Path) -> None:
    import pyarrow.fs as pafs

    from tests.conftest import CHROME_UA, running_collector

    url = f"s3://spool/{tmp_path.name}"
    env = {**s3.env(), "ANALYTICS_SPOOL_SHIP_URL": url, "ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": WWW,
           "ANALYTICS_SPOOL_SEGMENT_SECONDS": "60"}  # fmt: skip
    with running_collector(tmp_path / "data", env) as server:
        body = {"n": "pageview", "u": f"https://{WWW}/", "d": WWW}
        assert web.post(server.url + "/api/event", json=body, headers={"User-Agent": CHROME_UA}).status_code == 202
    # SIGTERM: the open segment is sealed, then shipped before the process exits.
    assert not list((tmp_path / "data" / "spool" / "sealed").glob("*.jsonl"))
    fs = s3.filesystem()
    infos = fs.get_file_info(pafs.FileSelector(url.removeprefix("s3://")))  # type: ignore[attr-defined]
    assert len([i for i in infos if i.path.endswith(".jsonl")]) == 1
