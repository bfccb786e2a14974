"""Building the lake's daily rollups and per-visit tables (aggregator/rollup.py says what they are).

Days are built in batches (:data:`BATCH_BYTES`): one sessionization and one rollup statement per batch, then
each day's files are published on their own, in the order that makes every step safe to interrupt:
the per-visit tables (with the slices and conversions files), then the rollup, then the day's older files are removed.
``ANALYTICS_ROLLUP_FAILPOINT`` kills the process at one of :data:`aggregator.rollup.ROLLUP_FAILPOINTS`, for
the tests.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aggregator import conversions, slices
from aggregator.db import connect
from aggregator.filters import GoalLike
from aggregator.lake import Lake, file_bytes, publish, sql_path
from aggregator.rollup import (
    BUILT_KINDS,
    SLICES_KIND,
    TABLE_KINDS,
    compute_rollup,
    fingerprint,
    rollup_name,
    visits_name,
)
from aggregator.settings import Settings


def _failpoint(name: str) -> None:
    if os.environ.get("ANALYTICS_ROLLUP_FAILPOINT") == name:  # tests only: die here, as a crash would
        os.kill(os.getpid(), signal.SIGKILL)


#: A batch of days built from one sessionization holds at most this many bytes of raw Parquet (a day
#: over it is built alone). Planning the rollup statement costs ~0.2 s whatever the day's size, so a run of
#: small days (a quiet site, a test lake) pays it once per batch instead of once per day. Kept small: each
#: day of a batch is written out by a scan of the whole batch's tables, and a 10M-event lake (~1.1 MB of raw
#: files a day) built in batches of 16 MB took 25 % more CPU and 3x the memory than day by day (measured).
BATCH_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class DayBuild:
    """One day to (re)build: its raw directory and current files, its rollup directory and its site's goals."""

    day_dir: Path
    files: list[Path]  # Lake.visible_parquet(day_dir), as the caller listed it (a request on object storage)
    rollup_dir: Path
    goals: Sequence[GoalLike]


def build_rollup(
    settings: Settings, lake: Lake, day_dir: Path, rollup_dir: Path, goals: Sequence[GoalLike] | None = None
) -> bool:
    """(Re)build one day's per-visit tables and rollup from its raw files. The caller holds the writer lock.

    With them, when the site has goals (``goals``, else read from the site configuration), the day's
    conversions file (aggregator/conversions.py) for those goals.
    """
    if goals is None:
        goals = conversions.site_goals(settings).get(rollup_dir.parent.name, ())
    return build_rollups(settings, lake, [DayBuild(day_dir, Lake.visible_parquet(day_dir), rollup_dir, goals)]) > 0


def build_rollups(
    settings: Settings, lake: Lake, days: Sequence[DayBuild], progress: Callable[[], None] | None = None
) -> int:
    """(Re)build days of one site (same goals), in batches of up to :data:`BATCH_BYTES` of raw files.

    Each batch is sessionized and rolled up by one :func:`compute_rollup`; every day's rows depend on that
    day's events only (visits never cross midnight), so each day's files are the ones a build of that day
    alone writes. Each day is then published in the crash-safe order of the module docstring. Returns how
    many days were built; ``progress`` is called once per day.
    """
    batch: list[DayBuild] = []
    size = built = 0
    for day in days:
        if not day.files:
            if progress is not None:
                progress()
            continue
        sizes = file_bytes(day.day_dir)  # one listing: on object storage, not a request per file
        day_size = sum(sizes.get(f.name, 0) for f in day.files)
        if batch and size + day_size > BATCH_BYTES:
            built += _build_batch(settings, lake, batch, progress)
            batch, size = [], 0
        batch.append(day)
        size += day_size
    if batch:
        built += _build_batch(settings, lake, batch, progress)
    return built


def _build_batch(settings: Settings, lake: Lake, batch: list[DayBuild], progress: Callable[[], None] | None) -> int:
    con = connect(settings)
    # Per day: its rollup directory and file name, its staged files (source, destination), its staged rollup.
    published: list[tuple[Path, Path, str, list[tuple[Path, Path]], Path]] = []
    try:
        t, site = compute_rollup(con, [str(f) for item in batch for f in item.files], "r")
        slices.build(con, t, "rs", site)
        lake.staging_dir.mkdir(parents=True, exist_ok=True)
        # Sorted by day key: a day key's rows sit together, and the files compress better.
        order = {
            "dict": "dimension, code",
            "visits": "day_key, vno",
            "hits": "day_key, vno, c_page",
            "pages": "day_key, vno",
        }
        goals = batch[0].goals
        goal_set = conversions.goal_set_key(goals)
        if goal_set:
            conversions.build(con, "r", goals)
        for item in batch:
            files = item.files
            day = dt.date.fromisoformat(item.day_dir.name.removeprefix("day="))
            where = f"day = DATE '{day.isoformat()}'"  # a date the lake's directory name holds, never input
            visits_dir = lake.visits_dir / item.rollup_dir.parent.name / item.rollup_dir.name
            staged: list[tuple[Path, Path]] = []
            for kind in TABLE_KINDS:
                tmp = lake.staging_dir / f"{kind}-{uuid.uuid4().hex}.parquet"
                con.execute(
                    f"COPY (SELECT * FROM {getattr(t, kind)} WHERE {where} ORDER BY {order[kind]}) "
                    f"TO {sql_path(tmp)} (FORMAT parquet)"
                )
                staged.append((tmp, visits_dir / visits_name(files, kind)))
            tmp = lake.staging_dir / f"slices-{uuid.uuid4().hex}.parquet"
            con.execute(slices.copy_sql("rs", where, tmp))
            staged.append((tmp, visits_dir / visits_name(files, SLICES_KIND)))
            fp = fingerprint(files)
            for tmp_conv, gid in conversions.stage(con, lake.staging_dir, "r", goals, where) if goal_set else ():
                staged.append((tmp_conv, visits_dir / conversions.file_name(fp, goal_set, gid)))
            tmp = lake.staging_dir / f"rollup-{uuid.uuid4().hex}.parquet"
            con.execute(
                f"COPY (SELECT * FROM r WHERE {where} ORDER BY dimension, value) TO {sql_path(tmp)} (FORMAT parquet)"
            )
            published.append((item.rollup_dir, visits_dir, rollup_name(files), staged, tmp))
    finally:
        con.close()
    for rollup_dir, visits_dir, name, staged, tmp in published:
        _publish_day(rollup_dir, visits_dir, name, staged, tmp)
        if progress is not None:
            progress()
    return len(published)


def _publish_day(rollup_dir: Path, visits_dir: Path, name: str, staged: list[tuple[Path, Path]], tmp: Path) -> None:
    for src, dst in staged:
        publish(src, dst)
    _failpoint("visits-published")
    publish(tmp, rollup_dir / name)
    _failpoint("rollup-published")
    keep_visits = {dst.name for _, dst in staged}
    for directory, keep in ((rollup_dir, {name}), (visits_dir, keep_visits)):
        for old in directory.glob("*.parquet"):
            if old.name not in keep:
                old.unlink(missing_ok=True)
    _failpoint("done")


def build_conversions(
    settings: Settings, lake: Lake, day_dir: Path, visits_dir: Path, goals: Sequence[GoalLike]
) -> bool:
    """(Re)build only a day's conversions files, from its current hits and dictionary files (the goals changed
    since its tables were built: no sessionization needed). The caller holds the writer lock."""
    files = Lake.visible_parquet(day_dir)
    if not files:
        return False
    tables = {kind: visits_dir / visits_name(files, kind) for kind in ("hits", "dict")}
    return conversions.rebuild(settings, lake, visits_dir, fingerprint(files), tables, goals)


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
    by_site = conversions.site_goals(settings)
    todo: list[DayBuild] = []
    conv_todo = []
    for site_path in lake.site_dirs(lake.events_dir):
        goals = by_site.get(site_path.name, ())
        goal_set = conversions.goal_set_key(goals)
        for day in Lake.days_in(site_path):
            if day > current or (day == current and not today):
                continue
            day_dir = site_path / f"day={day.isoformat()}"
            rollup_dir = lake.rollups_dir / site_path.name / day_dir.name
            files = Lake.visible_parquet(day_dir)
            if not files:
                continue
            visits_dir = lake.visits_dir / site_path.name / day_dir.name
            have_tables = all((visits_dir / visits_name(files, kind)).exists() for kind in BUILT_KINDS)
            if not force and (rollup_dir / rollup_name(files)).exists() and have_tables:
                # Goals changed since the day was built: only its conversions file is rebuilt.
                fp = fingerprint(files)
                names = [conversions.file_name(fp, goal_set, gid) for gid in conversions.goal_ids(goals)]
                if goal_set and not all((visits_dir / name).exists() for name in names):
                    conv_todo.append((day_dir, visits_dir, goals))
                continue
            todo.append(DayBuild(day_dir, files, rollup_dir, goals))
    total = len(todo) + len(conv_todo)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    built = 0
    for site_days in _by_site(todo):
        built += build_rollups(settings, lake, site_days, step)
    for day_dir, visits_dir, goals in conv_todo:
        built += build_conversions(settings, lake, day_dir, visits_dir, goals)
        step()
    return built


def _by_site(todo: list[DayBuild]) -> list[list[DayBuild]]:
    """The days to build, one list per site (a batch is one site's: one site value and one goal set)."""
    out: dict[str, list[DayBuild]] = {}
    for item in todo:
        out.setdefault(item.rollup_dir.parent.name, []).append(item)
    return list(out.values())
