"""The dropped-events table: how many events the collectors answered 202 and did not store, per site, day, reason.

The collectors write their counts as small sealed spool files
(collector/dropcounts.py, :class:`collector.schema.DropCount` lines). Ingest
(aggregator/ingest.py) takes them in the same batches as event segments, so the
same manifest makes them count exactly once: :func:`stage` sums a batch's counts
with what the lake holds for each (site, day) into one new file per (site, day),
staged; publishing the batch replaces the lake's file by it (a rename, or one
PUT on S3). A batch that is redone after a crash stages again from the same
published state (the writer lock serialises batches, and recovery runs first),
so nothing is counted twice or lost::

    lake/drops/site=<site dir>/day=<YYYY-MM-DD>/drops.parquet   site, day, reason, kind, events

Drops without a known site (``unknown_site``: the domain a request named is
attacker input and never stored) live under ``site=_unknown`` (a name no site
directory can have) with a NULL site. These are counts of filtered traffic, not
of visitors: no column describes a person, so no k-anonymity applies
(docs/privacy.md). They are aggregates, kept as long as the daily rollups.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from aggregator.db import connect
from aggregator.lake import Lake, is_object, site_dir_name, sql_path
from aggregator.settings import Settings
from collector.schema import DROP_COUNT_KINDS, DROP_COUNT_REASONS, DropCount, RecordError

#: The table's columns, in file order (tests/privacy checks the lake's files against this and docs/privacy.md).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("site", "VARCHAR"),
    ("day", "DATE"),
    ("reason", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("events", "BIGINT"),
)
UNKNOWN_SITE_DIR = "_unknown"
FILE_NAME = "drops.parquet"

Key = tuple[str | None, str, str, str | None]  # (site, day, reason, kind)


def drops_dir(lake: Lake) -> Path:
    return lake.root / "drops"


def site_part(site: str | None) -> str:
    return f"site={UNKNOWN_SITE_DIR if site is None else site_dir_name(site)}"


@dataclass(slots=True)
class Staged:
    files: list[str] = field(default_factory=list)  # paths relative to the staging directory and to the lake alike
    events: int = 0  # dropped events the batch's records count


def read_counts(paths: list[Path], reject: Callable[[str, int, str, bytes], None]) -> Counter[Key]:
    """The summed counts of drop-count files; a line that is no valid record goes to ``reject(file, n, why, line)``."""
    counts: Counter[Key] = Counter()
    for path in paths:
        for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                c = DropCount.from_record(json.loads(line))
            except ValueError as exc:  # not JSON, or a RecordError naming what is wrong
                reject(path.name, n, str(exc) if isinstance(exc, RecordError) else "not JSON", line)
                continue
            counts[c.site, c.day, c.reason, c.kind] += c.events
    return counts


def stage(con: duckdb.DuckDBPyConnection, lake: Lake, counts: Counter[Key], staging: Path) -> Staged:
    """One file per (site, day) the batch counted: its counts plus what the lake has for that day now."""
    out = Staged(events=sum(counts.values()))
    parts: dict[tuple[str | None, str], Counter[Key]] = {}
    for key, n in counts.items():
        parts.setdefault((key[0], key[1]), Counter())[key] += n
    for (site, day), part in sorted(parts.items(), key=lambda p: (p[0][0] or "", p[0][1])):
        rel = f"drops/{site_part(site)}/day={day}/{FILE_NAME}"
        published = lake.root / rel
        if published.exists():
            rows = con.execute("SELECT site, day, reason, kind, events FROM read_parquet(?)", [str(published)])
            for s, d, reason, kind, events in rows.fetchall():
                part[s, d.isoformat(), reason, kind] += int(events)
        dst = staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        _write(con, dst, part)
        out.files.append(rel)
    return out


def _write(con: duckdb.DuckDBPyConnection, path: Path, counts: Counter[Key]) -> None:
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE drops_out ({columns})")
    rows = [(s, dt.date.fromisoformat(d), r, k, n) for (s, d, r, k), n in counts.items()]
    con.executemany("INSERT INTO drops_out VALUES (?, ?, ?, ?, ?)", rows)
    con.execute(
        f"COPY (SELECT * FROM drops_out ORDER BY reason, kind NULLS FIRST) TO {sql_path(path)} (FORMAT parquet)"
    )
    con.execute("DROP TABLE drops_out")


@dataclass(frozen=True, slots=True)
class Dropped:
    """Events filtered out for one site over ``start``..``end`` (UTC days, inclusive), by reason and bot kind."""

    site: str
    start: dt.date
    end: dt.date
    reasons: dict[str, int]  # every reason of collector.schema.DROP_COUNT_REASONS, zero if none
    bot_kinds: dict[str, int]  # the ``bot`` reason split by kind (crawler, automation, ..., datacenter)

    @property
    def total(self) -> int:
        return sum(self.reasons.values())


def dropped(settings: Settings, site: str | None, start: dt.date, end: dt.date) -> Dropped:
    """Totals of the events dropped for ``site`` (None: with no known site) on the days ``start``..``end``."""
    lake = Lake(settings.lake_dir)
    base = drops_dir(lake) / site_part(site)
    # One listing of the site's days, not one per day (each would be a LIST request on S3): a day's
    # file has a fixed name, and a day exists in an object store only with its file in it.
    files = [base / f"day={day.isoformat()}" / FILE_NAME for day in Lake.days_in(base) if start <= day <= end]
    if not is_object(base):
        files = [f for f in files if f.exists()]  # a day directory made a moment before its file
    reasons = dict.fromkeys(DROP_COUNT_REASONS, 0)
    kinds = dict.fromkeys(DROP_COUNT_KINDS, 0)
    if files:
        con = connect(settings)
        try:
            rows = con.execute(
                "SELECT reason, kind, sum(events) FROM read_parquet(?) GROUP BY reason, kind",
                [[str(f) for f in files]],
            ).fetchall()
        finally:
            con.close()
        for reason, kind, events in rows:
            reasons[reason] = reasons.get(reason, 0) + int(events)
            if kind is not None:
                kinds[kind] = kinds.get(kind, 0) + int(events)
    return Dropped(site or "", start, end, reasons, kinds)
