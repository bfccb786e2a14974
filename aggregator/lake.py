"""The lake's layout on disk, the writer lock, and consistent file snapshots for readers.

::

    lake/
      events/site=<site dir>/day=<YYYY-MM-DD>/<batch>_<n>.parquet   raw events (immutable)
      events/site=.../day=.../compact-<id>.parquet (+ .covers)      a compacted day (see compact.py)
      rollups/site=<site dir>/day=<YYYY-MM-DD>/<fingerprint>-f<format>.parquet daily aggregates (see rollup.py)
      visits/site=<site dir>/day=<YYYY-MM-DD>/<fingerprint>-v<format>.parquet the per-visit table (sessions.py)
      quarantine/<segment>.jsonl                                    rejected records, with the reason
      staging/<batch>/                                              an ingest batch before it is published
      manifest.jsonl                                                committed batches (see ingest.py)
      .writer.lock                                                  held by every command that writes

Every file a reader can see is complete: files are written elsewhere and
renamed into place. Readers never take a lock: they list the files of the days
they need (partition pruning by site and day is a directory listing) and hand
that list to their own DuckDB connection.

The same layout can live on S3-compatible object storage (``ANALYTICS_LAKE_URL=s3://…``,
see objectstore.py). There the root is an :class:`~aggregator.objectstore.ObjectPath`;
the writer lock, ``staging/`` and ``manifest.jsonl`` stay in a local work directory
(``<data_dir>/lake``), and "publish" is an upload instead of a rename: a staged file
reaches the store only after its batch is committed in the manifest, under a name
derived from the batch id, so a store never holds an object of an uncommitted
batch and a redone upload overwrites the same object with the same bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
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
    if is_object(path):
        return  # an object store acknowledges a PUT or DELETE once it is durable
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rmtree(path: Path) -> None:
    """Remove a directory tree, or every object under a prefix."""
    if is_object(path):
        path.rmtree()  # type: ignore[attr-defined]
    else:
        shutil.rmtree(path)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_object(path: Path) -> bool:
    return hasattr(path, "upload")  # an ObjectPath (objectstore.py is imported only for s3:// lakes)


def publish(src: Path, dst: Path) -> None:
    """Make a complete file visible at ``dst`` atomically (rename, or one PUT) and durably."""
    if is_object(dst):
        dst.upload(os.fspath(src))  # type: ignore[attr-defined]
        src.unlink()
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)


def _entries(directory: Path) -> list[tuple[str, bool]]:
    """(name, is a directory) of the children of a local directory or an object prefix."""
    if is_object(directory):
        entries: list[tuple[str, bool]] = directory.entries()  # type: ignore[attr-defined]
        return entries
    try:
        with os.scandir(directory) as it:
            return [(e.name, e.is_dir()) for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []


def file_bytes(directory: Path) -> dict[str, int]:
    """Bytes of each file in a local directory or under an object prefix (one listing), by name."""
    if is_object(directory):
        sizes: dict[str, int] = directory.sizes()  # type: ignore[attr-defined]
        return sizes
    try:
        with os.scandir(directory) as it:
            return {e.name: e.stat().st_size for e in it if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return {}


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root
        # On object storage, what needs a real filesystem stays in a local work directory.
        work: Path = getattr(root, "work", root)
        self.work_dir = work
        self.events_dir = root / "events"
        self.rollups_dir = root / "rollups"
        self.visits_dir = root / "visits"
        self.quarantine_dir = root / "quarantine"
        self.staging_dir = work / "staging"
        self.manifest_path = work / "manifest.jsonl"

    # --- writers -----------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """One writer at a time (ingest, compaction, rollups, purge); readers never wait."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.work_dir / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
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

    def visits_day_dir(self, site: str, day: dt.date) -> Path:
        return self.visits_dir / f"site={site_dir_name(site)}" / f"day={day.isoformat()}"

    def site_dirs(self, base: Path) -> list[Path]:
        return sorted(base / name for name, is_dir in _entries(base) if is_dir and name.startswith("site="))

    @staticmethod
    def days_in(site_path: Path) -> list[dt.date]:
        days = []
        for name, is_dir in _entries(site_path):
            m = _DAY_DIR.fullmatch(name)
            if m and is_dir:
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
        names = [name for name, _ in _entries(directory)]
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
