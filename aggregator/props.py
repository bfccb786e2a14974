"""Custom properties at ingest: the cap on distinct values per key, site and day, and older files.

PRIVACY.md bounds how many distinct values a property key may have per site and
day; the rest are stored as ``(other)``. The collector cannot count (it is
stateless, and there are many of them); the ingester sees every event and is the
lake's only writer, so the cap is applied here, to each staged batch before it is
committed: the values a (site, day, key) already has in the lake are read, the
batch's new values are taken in order of first appearance (then by value) while
there is room, and every later one is rewritten to ``(other)``. At most N − 1
values are kept as sent, so that with ``(other)`` a key never has more than N
distinct values on a day, however many batches, collectors or reruns there are:
a batch that was not committed is staged again from the same lake, and a
committed one is published before the next is staged (ingest.py).

What the lake holds is the truth; an ingester that keeps running (``--follow``)
remembers the values of the days it touched, together with the names of the
files it read them from, and reads only files it has not seen (another writer's,
a compaction's). Event files written before custom properties existed get the
(empty) column once, so every reader sees one schema (:func:`add_missing_column`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from aggregator.lake import Lake, fsync_dir, publish, sql_path
from collector.schema import OTHER_VALUE

log = logging.getLogger("aggregator.props")

# Days whose known values an ingester keeps in memory (today, yesterday, and late arrivals).
CACHED_DAYS = 64
_ENTRIES = "unnest(map_entries(props))"


@dataclass(slots=True)
class _Known:
    files: set[str] = field(default_factory=set)
    values: dict[str, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class _Partition:
    site_dir: str  # as in the lake: site=<site_dir>/day=<day>
    day: str
    staged: list[Path] = field(default_factory=list)
    kept: dict[str, set[str]] = field(default_factory=dict)


class PropsCap:
    def __init__(self, lake: Lake, cap: int) -> None:
        self.lake = lake
        self.cap = cap
        self._known: OrderedDict[tuple[str, str], _Known] = OrderedDict()
        self._pending: list[_Partition] = []

    def _lake_values(self, con: duckdb.DuckDBPyConnection, site_dir: str, day: str) -> _Known:
        key = (site_dir, day)
        known = self._known.pop(key, None) or _Known()
        self._known[key] = known  # most recently used last
        while len(self._known) > CACHED_DAYS:
            self._known.popitem(last=False)
        directory = self.lake.events_dir / f"site={site_dir}" / f"day={day}"
        unseen = [p for p in Lake.visible_parquet(directory) if p.name not in known.files]
        if unseen:
            rows = con.execute(
                f"SELECT DISTINCT e.key, e.value FROM (SELECT {_ENTRIES} AS e FROM read_parquet($files))",
                {"files": [str(p) for p in unseen]},
            ).fetchall()
            for k, v in rows:
                known.values.setdefault(k, set()).add(v)
            known.files.update(p.name for p in unseen)
        return known

    def apply(self, con: duckdb.DuckDBPyConnection, staged_events: Path) -> int:
        """Fold the staged batch's values beyond the cap into ``(other)``; returns how many values were folded."""
        partitions: dict[tuple[str, str], _Partition] = {}
        for path in sorted(staged_events.rglob("*.parquet")) if staged_events.is_dir() else []:
            site_dir, day = path.parent.parent.name.split("=", 1)[1], path.parent.name.split("=", 1)[1]
            partitions.setdefault((site_dir, day), _Partition(site_dir, day)).staged.append(path)
        self._pending = []
        folded_total = 0
        for part in partitions.values():
            files = {"files": [str(p) for p in part.staged]}
            new = con.execute(
                f"SELECT e.key, e.value, min(ts) AS first FROM (SELECT ts, {_ENTRIES} AS e FROM read_parquet($files)) "
                "GROUP BY ALL ORDER BY first, e.value",
                files,
            ).fetchall()
            if not new:
                continue
            known = self._lake_values(con, part.site_dir, part.day)
            fold: list[str] = []
            for key, value, _ in new:
                have = known.values.get(key, set()) | part.kept.get(key, set())
                if value in have or value == OTHER_VALUE:
                    continue
                # Room for N - 1 values as sent: with "(other)" a key has at most N on a day.
                if len(have - {OTHER_VALUE}) < self.cap - 1:
                    part.kept.setdefault(key, set()).add(value)
                else:
                    fold.append(f"{key}\x00{value}")
                    part.kept.setdefault(key, set()).add(OTHER_VALUE)
            if fold:
                for path in part.staged:
                    _rewrite(con, path, fold)
                folded_total += len(fold)
            self._pending.append(part)
        return folded_total

    def published(self, paths: list[str]) -> None:
        """The batch is in the lake: its values and files (lake-relative ``paths``) are known from now on."""
        names: dict[tuple[str, str], list[str]] = {}
        for dst in paths:
            if dst.startswith("events/"):
                _, site_part, day_part, name = dst.split("/")
                names.setdefault((site_part.split("=", 1)[1], day_part.split("=", 1)[1]), []).append(name)
        for part in self._pending:
            known = self._known.get((part.site_dir, part.day))
            if known is None:
                continue
            for k, vs in part.kept.items():
                known.values.setdefault(k, set()).update(vs)
            known.files.update(names.get((part.site_dir, part.day), []))
        self._pending = []


def _rewrite(con: duckdb.DuckDBPyConnection, path: Path, fold: list[str]) -> None:
    """``path`` again, with the folded (key, value) pairs' values replaced by ``(other)``."""
    tmp = path.with_name(path.name + ".folding")
    con.execute(
        "COPY (SELECT * REPLACE (CAST(map_from_entries(list_transform(map_entries(props), lambda e: "
        "{'key': e.key, 'value': CASE WHEN list_contains($fold, e.key || chr(0) || e.value) "
        "THEN $other ELSE e.value END})) AS MAP(VARCHAR, VARCHAR)) AS props) FROM read_parquet($file)) "
        f"TO {sql_path(tmp)} (FORMAT parquet)",
        {"fold": fold, "other": OTHER_VALUE, "file": str(path)},
    )
    tmp.replace(path)
    fsync_dir(path.parent)


def _marker(lake: Lake) -> Path:
    return lake.work_dir / ".props-column"


def props_column_done(lake: Lake) -> bool:
    return _marker(lake).exists()


def add_missing_column(con: duckdb.DuckDBPyConnection, lake: Lake) -> int:
    """Give event files from before custom properties an empty ``props`` column; returns how many were rewritten.

    Each file is rewritten elsewhere and replaces itself atomically (a rename, or
    one PUT), so a crash leaves every file either old or new, and the next run
    finishes the rest. Done once per lake: a marker in the work directory says so.
    """
    rewritten = 0
    for site_path in lake.site_dirs(lake.events_dir):
        for day in Lake.days_in(site_path):
            for path in Lake.visible_parquet(site_path / f"day={day.isoformat()}"):
                (has,) = con.execute(
                    "SELECT count(*) FROM parquet_schema($file) WHERE name = 'props'", {"file": str(path)}
                ).fetchone() or (0,)
                if has:
                    continue
                lake.staging_dir.mkdir(parents=True, exist_ok=True)
                tmp = lake.staging_dir / f"props-{path.name}"
                con.execute(
                    "COPY (SELECT *, CAST(MAP {} AS MAP(VARCHAR, VARCHAR)) AS props FROM read_parquet($file)) "
                    f"TO {sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)",
                    {"file": str(path)},
                )
                publish(tmp, path)
                rewritten += 1
    if rewritten:
        log.warning("added the custom property column to %d event files from before it existed", rewritten)
    _marker(lake).write_text("event files have the props column (aggregator/props.py)\n")
    return rewritten
