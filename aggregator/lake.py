"""The lake's layout on disk, the writer lock, and consistent file snapshots for readers.

::

    lake/
      events/site=<site dir>/day=<YYYY-MM-DD>/<batch>_<n>.parquet   raw events (immutable)
      events/site=.../day=.../compact-<id>.parquet (+ .covers)      a compacted day (see compact.py)
      rollups/site=<site dir>/day=<YYYY-MM-DD>/<fingerprint>.parquet daily aggregates (see rollup.py)
      quarantine/<segment>.jsonl                                    rejected records, with the reason
      staging/<batch>/                                              an ingest batch before it is published
      manifest.jsonl                                                committed batches (see ingest.py)
      .writer.lock                                                  held by every command that writes

Every file a reader can see is complete: files are written elsewhere and
renamed into place. Readers never take a lock: they list the files of the days
they need (partition pruning by site and day is a directory listing) and hand
that list to their own DuckDB connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

_SAFE_SITE = re.compile(r"[a-z0-9][a-z0-9.-]{0,252}")
_DAY_DIR = re.compile(r"day=(\d{4}-\d{2}-\d{2})")


def site_dir_name(site: str) -> str:
    """A directory name for a site that cannot escape the lake or collide.

    Sites come from the collector's allowlist (hostnames), but a partition name is
    a path: anything that is not a plain lowercase hostname is replaced by a hash.
    """
    if _SAFE_SITE.fullmatch(site) and ".." not in site:
        return site
    return "x-" + hashlib.sha256(site.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def site_dir_sql(column: str) -> str:
    """:func:`site_dir_name` as a SQL expression over a column (a fixed identifier)."""
    return (
        f"CASE WHEN regexp_full_match({column}, '[a-z0-9][a-z0-9.-]{{0,252}}') AND NOT contains({column}, '..') "
        f"THEN {column} ELSE 'x-' || left(sha256({column}), 24) END"
    )


def sql_path(path: Path) -> str:
    """A file path as a SQL string literal, for the few statements (COPY TO) that take no parameter."""
    return "'" + str(path).replace("'", "''") + "'"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(src: Path, dst: Path) -> None:
    """Make a complete file visible at ``dst`` atomically (rename) and durably."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.events_dir = root / "events"
        self.rollups_dir = root / "rollups"
        self.quarantine_dir = root / "quarantine"
        self.staging_dir = root / "staging"
        self.manifest_path = root / "manifest.jsonl"

    # --- writers -----------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """One writer at a time (ingest, compaction, rollups, purge); readers never wait."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock, also when the process dies

    # --- layout ------------------------------------------------------------------

    def day_dir(self, site: str, day: dt.date) -> Path:
        return self.events_dir / f"site={site_dir_name(site)}" / f"day={day.isoformat()}"

    def rollup_day_dir(self, site: str, day: dt.date) -> Path:
        return self.rollups_dir / f"site={site_dir_name(site)}" / f"day={day.isoformat()}"

    def site_dirs(self, base: Path) -> list[Path]:
        return sorted(p for p in base.glob("site=*") if p.is_dir()) if base.is_dir() else []

    @staticmethod
    def days_in(site_path: Path) -> list[dt.date]:
        days = []
        for p in site_path.iterdir() if site_path.is_dir() else []:
            m = _DAY_DIR.fullmatch(p.name)
            if m and p.is_dir():
                days.append(dt.date.fromisoformat(m.group(1)))
        return sorted(days)

    def event_days(self, site: str) -> list[dt.date]:
        return self.days_in(self.events_dir / f"site={site_dir_name(site)}")

    def rollup_days(self, site: str) -> list[dt.date]:
        return self.days_in(self.rollups_dir / f"site={site_dir_name(site)}")

    # --- reader snapshots --------------------------------------------------------

    @staticmethod
    def visible_parquet(directory: Path) -> list[Path]:
        """The complete, current Parquet files of one partition directory.

        A compacted file is published next to a ``.covers`` list naming the files
        it replaces; from that moment those are skipped even if not yet deleted, so
        a reader sees either the old files or the compacted one, never both.
        """
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        parquet = {n for n in names if n.endswith(".parquet")}
        covered: set[str] = set()
        for n in names:
            if n.endswith(".covers") and n.removesuffix(".covers") + ".parquet" in parquet:
                try:
                    covered.update(json.loads((directory / n).read_text()))
                except (FileNotFoundError, ValueError):
                    continue
        return [directory / n for n in sorted(parquet - covered)]

    def event_files(self, site: str, day: dt.date) -> list[Path]:
        return self.visible_parquet(self.day_dir(site, day))
