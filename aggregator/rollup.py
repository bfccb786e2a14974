"""Daily rollups (per site, day and dimension value, the additive metric components) and the per-visit table.

One Parquet file of each per (site, day), named after the fingerprint of the raw
files it was built from (``rollups/site=/day=/<fingerprint>-f<format>.parquet``,
``visits/site=/day=/<fingerprint>-v<format>.parquet``), both from one
sessionization of the day's events. A day that
receives late events or is compacted gets a new raw file set, so its old
rollup stops matching and queries fall back to raw events for that day until
the rollup is rebuilt: a stale rollup is never used. Rebuilding is idempotent
(same files in, same rows out) and atomic (write elsewhere, rename, then remove
the old file). Once the raw events of a day are purged, its rollup is the only
record left and is used as is; its per-visit table is raw data and is purged
with the events (PRIVACY.md "derived records").

Build order, each step safe to interrupt (``ANALYTICS_ROLLUP_FAILPOINT`` kills the
process at one, for the tests): the visits file is published, then the rollup
file, then older files of the day are removed. A day whose rollup is current
but whose visits file is missing is built again, so a crash between the two
renames only costs a rebuild.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

from duckdb import DuckDBPyConnection as Connection

from aggregator.db import connect
from aggregator.dimensions import ROLLUP_DIMENSIONS
from aggregator.lake import Lake, publish, sql_path
from aggregator.metrics import COMPONENT_NAMES
from aggregator.querybuild import Column, column, day_rows_sql
from aggregator.sessions import sessionized_sql, visits_sql
from aggregator.settings import Settings

#: Bumped when the rollup's rows change meaning or gain dimensions: rollups of an older format stop
#: matching their day's files, so queries roll those days up in memory until `aggregator rollup` rebuilds
#: them. (Days whose raw events are purged keep their older rollup: it lacks only the newer dimensions.)
ROLLUP_FORMAT = 2
#: Bumped when the per-visit table's columns change: older visits files stop matching and are rebuilt.
VISITS_FORMAT = 1
ROLLUP_FAILPOINTS = ("visits-published", "rollup-published", "done")


def fingerprint(files: list[Path]) -> str:
    names = "\n".join([f"rollup format {ROLLUP_FORMAT}", *sorted(p.name for p in files)])
    return hashlib.sha256(names.encode()).hexdigest()[:20]


def rollup_name(files: list[Path]) -> str:
    """The rollup file of these raw files; its format is in the name too, for days whose raw files are gone."""
    return f"{fingerprint(files)}-f{ROLLUP_FORMAT}.parquet"


def visits_name(files: list[Path]) -> str:
    return f"{fingerprint(files)}-v{VISITS_FORMAT}.parquet"


def current_visits(lake: Lake, site: str, day: dt.date, raw_files: list[Path]) -> Path | None:
    """The per-visit table built from exactly ``raw_files`` (None: not built, or built from other files)."""
    if not raw_files:
        return None
    want = visits_name(raw_files)
    for path in Lake.visible_parquet(lake.visits_day_dir(site, day)):
        if path.name == want:
            return path
    return None


def rollup_format(path: Path) -> int:
    """The format a rollup file was built with (format 1 files have no ``-f<n>`` suffix)."""
    stem = path.name.removesuffix(".parquet")
    head, sep, tail = stem.rpartition("-f")
    return int(tail) if sep and head and tail.isdigit() else 1


def current_rollup(lake: Lake, site: str, day: dt.date, raw_files: list[Path]) -> Path | None:
    """The usable rollup of a day: built from exactly ``raw_files``, or any if the raw day is gone."""
    built = Lake.visible_parquet(lake.rollup_day_dir(site, day))
    if not built:
        return None
    if not raw_files:
        return built[-1]
    want = rollup_name(raw_files)
    for path in built:
        if path.name == want:
            return path
    return None


def compute_rollup(
    con: Connection, files: list[str], table: str, dimensions: tuple[str, ...] = ROLLUP_DIMENSIONS
) -> None:
    """Rollup rows of the raw ``files`` (one site, any days) into the new temp table ``table``.

    ``table`` is an identifier made up by the caller, never input. Columns:
    site, day, dimension, value, then the components as BIGINT. This is the one
    definition of a rollup: the builder writes it to Parquet, and a querier
    computes it in memory for a day whose rollup is not built yet. The rows of
    each dimension do not depend on the others, so computing some of
    ``ROLLUP_DIMENSIONS`` (plus the totals, dimension ``''``) gives exactly those
    rows of the full rollup. The day's per-visit table is left in ``<table>_visits``.
    """
    params: dict[str, object] = {"files": files}
    con.execute(
        f"CREATE TEMP TABLE {table}_rows AS WITH {sessionized_sql('read_parquet($files)')} SELECT * FROM rows", params
    )
    con.execute(f"CREATE TEMP TABLE {table}_visits AS {visits_sql(f'{table}_rows')}")
    (site,) = con.execute(f"SELECT any_value(site) FROM {table}_rows").fetchone() or (None,)
    p: dict[str, object] = {"site": site}
    cols: list[Column] = [column((d,)) for d in dimensions]
    inner = day_rows_sql(cols, p, visits=f"{table}_visits", rows=f"{table}_rows", scroll=True)
    comps = ", ".join(f"CAST(coalesce({c}, 0) AS BIGINT) AS {c}" for c in COMPONENT_NAMES)
    con.execute(
        f"CREATE TEMP TABLE {table} AS SELECT CAST($site AS VARCHAR) AS site, day, dimension, value, {comps} "
        f"FROM ({inner})",
        p,
    )
    con.execute(f"DROP TABLE {table}_rows")


def _failpoint(name: str) -> None:
    if os.environ.get("ANALYTICS_ROLLUP_FAILPOINT") == name:  # tests only: die here, as a crash would
        os.kill(os.getpid(), signal.SIGKILL)


def build_rollup(settings: Settings, lake: Lake, day_dir: Path, rollup_dir: Path) -> bool:
    """(Re)build one day's per-visit table and rollup from its raw files. The caller holds the writer lock."""
    files = Lake.visible_parquet(day_dir)
    if not files:
        return False
    name, vname = rollup_name(files), visits_name(files)
    visits_dir = lake.visits_dir / rollup_dir.parent.name / rollup_dir.name
    con = connect(settings)
    try:
        compute_rollup(con, [str(f) for f in files], "r")
        lake.staging_dir.mkdir(parents=True, exist_ok=True)
        vtmp = lake.staging_dir / f"visits-{uuid.uuid4().hex}.parquet"
        # Sorted by day key: a day key's rows sit together, and the file compresses better.
        con.execute(f"COPY (SELECT * FROM r_visits ORDER BY day_key, vno) TO {sql_path(vtmp)} (FORMAT parquet)")
        tmp = lake.staging_dir / f"rollup-{uuid.uuid4().hex}.parquet"
        con.execute(f"COPY (SELECT * FROM r ORDER BY dimension, value) TO {sql_path(tmp)} (FORMAT parquet)")
    finally:
        con.close()
    publish(vtmp, visits_dir / vname)
    _failpoint("visits-published")
    publish(tmp, rollup_dir / name)
    _failpoint("rollup-published")
    for directory, keep in ((rollup_dir, name), (visits_dir, vname)):
        for old in directory.glob("*.parquet"):
            if old.name != keep:
                old.unlink(missing_ok=True)
    _failpoint("done")
    return True


def refresh_rollups(
    settings: Settings,
    now: dt.datetime,
    *,
    force: bool = False,
    today: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    lake = Lake(settings.lake_dir)
    with lake.writer():
        return refresh_rollups_locked(settings, lake, now, force=force, today=today, progress=progress)


def refresh_rollups_locked(
    settings: Settings,
    lake: Lake,
    now: dt.datetime,
    *,
    force: bool = False,
    today: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Build the rollup of every closed day (before today, UTC) that has none matching its files.

    With ``today``, the current day too (``ingest --follow`` does so after each
    batch: until the next batch changes the day's files, dashboards read today
    from it; right after, from raw events, exactly as before).
    """
    current = now.astimezone(dt.UTC).date()
    todo = []
    for site_path in lake.site_dirs(lake.events_dir):
        for day in Lake.days_in(site_path):
            if day > current or (day == current and not today):
                continue
            day_dir = site_path / f"day={day.isoformat()}"
            rollup_dir = lake.rollups_dir / site_path.name / day_dir.name
            files = Lake.visible_parquet(day_dir)
            if not files:
                continue
            visits_dir = lake.visits_dir / site_path.name / day_dir.name
            if not force and (rollup_dir / rollup_name(files)).exists() and (visits_dir / visits_name(files)).exists():
                continue
            todo.append((day_dir, rollup_dir))
    built = 0
    for done, (day_dir, rollup_dir) in enumerate(todo, 1):
        built += build_rollup(settings, lake, day_dir, rollup_dir)
        if progress is not None:
            progress(done, len(todo))
    return built
