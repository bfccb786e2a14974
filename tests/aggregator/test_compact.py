from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from aggregator.compact import compact_closed_days, finish_interrupted
from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.query import Querier, QueryRequest
from aggregator.rollup import current_rollup
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from tests.aggregator.conftest import identity, lake_events

SITE = "www.onecloud.example"
NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def _many_small_files(tmp_path: Path) -> tuple[Settings, list[object]]:
    settings = Settings(data_dir=tmp_path / "d", duckdb_threads=2, ingest_batch_bytes=20_000)
    events = generate(Traffic(dt.date(2026, 11, 20), 2, {SITE: 40}, seed=9))
    write_segments(events, settings.sealed_dir, per_segment=40)
    Ingester(settings).run_once()
    return settings, events  # type: ignore[return-value]


def test_compaction_merges_files_and_keeps_every_event(tmp_path: Path) -> None:
    settings, events = _many_small_files(tmp_path)
    lake = Lake(settings.lake_dir)
    day = dt.date(2026, 11, 20)
    assert len(lake.event_files(SITE, day)) > 3
    refresh_rollups(settings, NOW)
    before = Querier(settings).run(QueryRequest(SITE, ("visitors", "visits"), (day, day), ("event:page",)), NOW)
    assert compact_closed_days(settings, NOW) >= 2
    assert len(lake.event_files(SITE, day)) == 1
    assert lake_events(settings) == Counter(identity(e) for e in events)  # type: ignore[arg-type]
    # The rollup was rebuilt for the new file set and still answers the same.
    assert current_rollup(lake, SITE, day, lake.event_files(SITE, day)) is not None
    after = Querier(settings).run(QueryRequest(SITE, ("visitors", "visits"), (day, day), ("event:page",)), NOW)
    assert after.rows == before.rows and after.rollup_days == 1


def test_readers_never_see_old_and_new_files_together(tmp_path: Path) -> None:
    settings, events = _many_small_files(tmp_path)
    lake = Lake(settings.lake_dir)
    day_dir = lake.day_dir(SITE, dt.date(2026, 11, 20))
    old = lake.visible_parquet(day_dir)
    # Simulate a crash between publishing the compacted file and deleting the covered ones.
    merged = day_dir / "compact-x.parquet"
    import duckdb

    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet({[str(p) for p in old]})) TO '{merged}'")
    (day_dir / "compact-x.covers").write_text(__import__("json").dumps([p.name for p in old]))
    assert lake.visible_parquet(day_dir) == [merged]
    finish_interrupted(day_dir)
    assert sorted(day_dir.iterdir()) == [merged]
    assert lake_events(settings) == Counter(identity(e) for e in events)  # type: ignore[arg-type]
