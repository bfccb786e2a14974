"""Compaction: a closed day's small files become one, atomically for readers.

Steps, each safe to interrupt:

1. write ``compact-<id>.parquet`` in staging (all rows of the day's visible files);
2. put ``compact-<id>.covers`` (the names it replaces) in the day directory;
3. rename the compacted file into the day directory — from here readers skip the
   covered files (see :meth:`Lake.visible_parquet`), so they see old or new, never both;
4. delete the covered files, then the ``.covers`` file.

Recovery (:func:`finish_interrupted`): a ``.covers`` without its Parquet file is
dropped (step 3 never happened); with it, steps 4 are redone. The day's rollup
is rebuilt after compaction because its fingerprint names the raw files.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from aggregator.db import connect
from aggregator.lake import Lake, fsync_dir, fsync_file, publish, sql_path
from aggregator.rollupbuild import build_rollup
from aggregator.settings import Settings


def finish_interrupted(day_dir: Path) -> None:
    for covers in day_dir.glob("*.covers"):
        compacted = covers.with_suffix(".parquet")
        if compacted.exists():
            for name in json.loads(covers.read_text()):
                (day_dir / name).unlink(missing_ok=True)
            fsync_dir(day_dir)
        covers.unlink()
    fsync_dir(day_dir)


def compact_day(settings: Settings, lake: Lake, day_dir: Path) -> bool:
    """Merge the visible files of one day directory. The caller holds the writer lock."""
    finish_interrupted(day_dir)
    files = Lake.visible_parquet(day_dir)
    if len(files) <= 1:
        return False
    name = f"compact-{uuid.uuid4().hex}"
    lake.staging_dir.mkdir(parents=True, exist_ok=True)
    tmp = lake.staging_dir / f"{name}.parquet"
    con = connect(settings)
    try:
        con.execute(
            f"COPY (SELECT * FROM read_parquet($files) ORDER BY ts) TO {sql_path(tmp)} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
            {"files": [str(f) for f in files]},
        )
    finally:
        con.close()
    fsync_file(tmp)
    covers_tmp = lake.staging_dir / f"{name}.covers"
    covers_tmp.write_text(json.dumps([f.name for f in files]))
    fsync_file(covers_tmp)
    publish(covers_tmp, day_dir / f"{name}.covers")
    publish(tmp, day_dir / f"{name}.parquet")
    for f in files:
        f.unlink(missing_ok=True)
    fsync_dir(day_dir)
    (day_dir / f"{name}.covers").unlink()
    fsync_dir(day_dir)
    return True


#: An open day (today) is compacted once it has this many files: ingest adds one per batch.
OPEN_DAY_MAX_FILES = 32


def compact_closed_days(settings: Settings, now: dt.datetime) -> int:
    lake = Lake(settings.lake_dir)
    with lake.writer():
        return compact_locked(settings, lake, now)


def compact_locked(settings: Settings, lake: Lake, now: dt.datetime) -> int:
    """Compact every closed day (before today, UTC) with more than one file, and today once it has
    :data:`OPEN_DAY_MAX_FILES`; rebuild the rollup of each compacted closed day."""
    today = now.astimezone(dt.UTC).date()
    done = 0
    for site_path in lake.site_dirs(lake.events_dir):
        for day in Lake.days_in(site_path):
            day_dir = site_path / f"day={day.isoformat()}"
            if day >= today and len(Lake.visible_parquet(day_dir)) < OPEN_DAY_MAX_FILES:
                continue
            if compact_day(settings, lake, day_dir):
                done += 1
                if day < today:
                    build_rollup(settings, lake, day_dir, lake.rollups_dir / site_path.name / day_dir.name)
    return done
