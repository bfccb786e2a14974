"""Rollup rows held in a querier's in-memory database: built rollup files, and days computed here.

A built rollup file is immutable (named after the raw files it summarises), so
its rows are read once per process. A day whose rollup is not built yet (today,
right after an ingest batch) gets the very same rows computed in memory with
:func:`aggregator.rollup.compute_rollup`, once per process and raw-file set (a later page asking for
other dimensions computes them from the day's tables kept here, without reading the raw files again):
the entry is keyed by the fingerprint of the day's current files, so a day
whose files changed is computed again and its old rows are dropped, never used.

Every source (a rollup file or a computed day) gets a small integer id; a page
of queries sums all the rows it needs in one statement (:meth:`RollupStore.sums`).
A computed day also keeps its per-visit tables (``dict_cache``, ``visits_cache``,
``hits_cache``: aggregator/tables.py), which filtered queries read for days whose
files are not built yet (:meth:`RollupStore.tables`, :meth:`RollupStore.copy_tables`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from duckdb import DuckDBPyConnection as Connection

from aggregator.dimensions import ROLLUP_DIMENSIONS
from aggregator.metrics import COMPONENT_NAMES
from aggregator.querybuild import rollup_sums_sql
from aggregator.rollup import TABLE_KINDS, compute_tables, fingerprint, rollup_rows
from aggregator.tables import tables

log = logging.getLogger("aggregator.daycache")

#: Rollup sources (files and computed days) kept in memory; beyond this all are dropped and reloaded on demand.
MAX_CACHED_SOURCES = 20_000
#: Computed (site, day) entries kept; the least recently used beyond this are dropped.
MAX_COMPUTED_DAYS = 64

#: (dimension, value, day (totals only), components, most visitors on one day)
SumRow = tuple[str, str, dt.date | None, tuple[object, ...], object]


@dataclass(frozen=True, slots=True)
class MissingDay:
    """A day in range with raw files but no rollup built from exactly those files."""

    site: str
    day: dt.date
    files: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"computed:{self.site}:{self.day.isoformat()}:{fingerprint([Path(f) for f in self.files])}"


class RollupStore:
    def __init__(self, db: Connection) -> None:
        self._db = db
        db.execute(
            "CREATE TABLE rollup_cache (src INTEGER, site VARCHAR, day DATE, dimension VARCHAR, value VARCHAR, "
            + ", ".join(f"{c} BIGINT" for c in COMPONENT_NAMES)
            + ")"
        )
        self._ids: dict[str, int] = {}  # source (file path or computed-day key) → id
        self._next_id = 0
        self._computed: OrderedDict[tuple[str, dt.date], str] = OrderedDict()  # (site, day) → its key
        self._have: dict[str, set[str]] = {}  # computed key → the dimensions computed so far ('' = totals)
        self._tables_ready = False  # the *_cache tables exist (created from the first computed day's columns)
        self._lock = threading.Lock()  # rollup_cache and the maps above
        self._compute_lock = threading.Lock()

    def sums(self, files: list[str], missing: list[MissingDay], dims: tuple[str, ...]) -> list[SumRow]:
        """Sum of the rows of these rollup ``files`` and ``missing`` days (computed if need be), for ``dims``.

        Missing days are computed outside the main lock (other threads' pages
        keep being answered meanwhile); loading files, checking that every
        source is present and summing happen under it, so no other thread's
        eviction can drop rows in between. If one did before, compute again.
        """
        want = {"", *dims}
        for attempt in range(3):
            if attempt < 2:
                self._compute_days(missing, want)
            with self._lock:
                self._evict(len(files) + len(missing))
                if attempt == 2:  # evicted twice meanwhile: compute under the lock, nothing can interfere
                    self._compute_days_locked(missing, want)
                self._load_files(files)
                if self._todo(missing, want):
                    continue
                for m in missing:
                    self._computed.move_to_end((m.site, m.day))
                while len(self._computed) > max(MAX_COMPUTED_DAYS, len(missing)):
                    _, key = self._computed.popitem(last=False)  # least recently used, never this page's
                    self._drop(key)
                ids = [self._ids[f] for f in files] + [self._ids[m.key] for m in missing]
                params: dict[str, object] = {"ids": ids}
                sql = rollup_sums_sql(dims, params, source="rollup_cache", ids="$ids")
                rows = self._db.execute(sql, params).fetchall()
                return [(str(r[0]), str(r[1]), r[2], tuple(r[3:-1]), r[-1]) for r in rows]
        raise AssertionError("unreachable: the last attempt computes under the lock")

    def tables(self, missing: list[MissingDay]) -> list[int]:
        """Source ids of these days' per-visit tables in the caches (computed if need be)."""
        for attempt in range(3):
            if attempt < 2:
                self._compute_days(missing, {""})
            with self._lock:
                if attempt == 2:
                    self._compute_days_locked(missing, {""})
                if not self._todo(missing, {""}):
                    for m in missing:
                        self._computed.move_to_end((m.site, m.day))
                    return [self._ids[m.key] for m in missing]
        raise AssertionError("unreachable: the last attempt computes under the lock")

    def copy_tables(self, cur: Connection, prefix: str, ids: list[int]) -> None:
        """Copy computed days' tables into the caller's temp tables ``<prefix>_dict`` / ``_visits`` / ``_hits``.

        A copy (not a view) so that no eviction by another thread can drop rows while the caller reads them.
        """
        with self._lock:
            self._copy_tables(cur, prefix, ids)

    def _copy_tables(self, cur: Connection, prefix: str, ids: list[int]) -> None:
        if not self._tables_ready:
            raise AssertionError("no computed tables")
        for kind in TABLE_KINDS:
            cur.execute(
                f"CREATE TEMP TABLE {prefix}_{kind} AS SELECT * EXCLUDE (src) FROM {kind}_cache "
                "WHERE list_contains(CAST($ids AS INTEGER[]), src)",
                {"ids": ids},
            )

    def copy_rows(
        self, cur: Connection, table: str, files: list[str], missing: list[MissingDay], dims: list[str]
    ) -> None:
        """Day rows (day, dimension, value, visitors) of these sources for ``dims``, into the caller's temp table."""
        for attempt in range(3):
            if attempt < 2:
                self._compute_days(missing, {"", *dims})
            with self._lock:
                if attempt == 2:
                    self._compute_days_locked(missing, {"", *dims})
                self._load_files(files)
                if self._todo(missing, {"", *dims}):
                    continue
                ids = [self._ids[f] for f in files] + [self._ids[m.key] for m in missing]
                cur.execute(
                    f"CREATE TEMP TABLE {table} AS SELECT day, dimension, value, visitors FROM rollup_cache "
                    "WHERE list_contains(CAST($ids AS INTEGER[]), src) "
                    "AND list_contains(CAST($dims AS VARCHAR[]), dimension)",
                    {"ids": ids, "dims": ["", *dims]},
                )
                return
        raise AssertionError("unreachable: the last attempt computes under the lock")

    def computed_rows(self, site: str, day: dt.date) -> list[tuple[object, ...]]:
        """The rows computed in memory for a day (its current entry), sorted; empty if none."""
        with self._lock:
            key = self._computed.get((site, day))
            src = self._ids.get(key) if key else None
            cols = ", ".join(COMPONENT_NAMES)
            rows = self._db.execute(
                f"SELECT site, day, dimension, value, {cols} FROM rollup_cache WHERE src = $src "
                "ORDER BY dimension, value",
                {"src": src},
            ).fetchall()
        return [tuple(r) for r in rows]

    def _new_id(self, source: str) -> int:
        self._next_id += 1
        self._ids[source] = self._next_id
        return self._next_id

    def _evict(self, needed: int) -> None:
        if len(self._ids) + needed > MAX_CACHED_SOURCES:
            self._db.execute("DELETE FROM rollup_cache")
            if self._tables_ready:
                for kind in TABLE_KINDS:
                    self._db.execute(f"DELETE FROM {kind}_cache")
            self._ids.clear()
            self._computed.clear()
            self._have.clear()

    def _load_files(self, files: list[str]) -> None:
        missing = [f for f in files if f not in self._ids]
        if not missing:
            return
        cols = ", ".join(COMPONENT_NAMES)
        ids = list(range(self._next_id + 1, self._next_id + 1 + len(missing)))
        # All new files in one scan (a dashboard's first page reads ~90 of them).
        self._db.execute(
            f"INSERT INTO rollup_cache SELECT i.src, r.site, r.day, r.dimension, r.value, {cols} "
            "FROM read_parquet($files, filename=true) r "
            "JOIN (SELECT unnest($files) AS file, unnest($ids) AS src) i ON r.filename = i.file",
            {"files": missing, "ids": ids},
        )
        for f in missing:  # only once their rows are in (a file purged meanwhile raises above)
            self._new_id(f)

    def _todo(self, days: list[MissingDay], want: set[str]) -> list[MissingDay]:
        return [m for m in days if m.key not in self._ids or not want <= self._have.get(m.key, set())]

    def _compute_days(self, days: list[MissingDay], want: set[str]) -> None:
        with self._compute_lock:  # one computation at a time: a day is never computed twice at once
            with self._lock:
                todo = self._todo(days, want)
            if todo:
                self._compute(todo, want, locked=False)

    def _compute_days_locked(self, days: list[MissingDay], want: set[str]) -> None:
        todo = self._todo(days, want)
        if todo:
            self._compute(todo, want, locked=True)

    def _compute(self, todo: list[MissingDay], want: set[str], *, locked: bool) -> None:
        """One pass over the raw files of each site's missing days, for the dimensions some of them lack.

        Only the dimensions asked for are computed (a dashboard page asks for
        fewer than all of them); a later page asking for others computes just
        those. Rows are published under the main lock.
        """
        cols = ", ".join(COMPONENT_NAMES)
        cur = self._db.cursor()  # its own connection: temp tables are private to it
        try:
            for i, site in enumerate(sorted({m.site for m in todo})):
                days = [m for m in todo if m.site == site]
                lacking = set().union(*(want - self._have.get(m.key, set()) for m in days))
                table = f"computed_{i}"  # made up here, never from input
                dims = tuple(d for d in ROLLUP_DIMENSIONS if d in lacking)
                from_cache = self._tables_for(cur, days, table, dims, locked=locked)
                with contextlib.nullcontext() if locked else self._lock:
                    if not self._tables_ready:
                        for kind in TABLE_KINDS:
                            cur.execute(
                                f"CREATE TABLE {kind}_cache AS SELECT 0 AS src, * FROM {table}_{kind} WHERE false"
                            )
                        self._tables_ready = True
                    for m in days:
                        if m.key not in self._ids:
                            old = self._computed.pop((m.site, m.day), None)
                            if old is not None:
                                self._drop(old)  # the day's files changed: its old rows are never used again
                            self._new_id(m.key)
                            self._have[m.key] = set()
                        # only what this pass computed (an eviction meanwhile may have reset the day)
                        new = sorted((want - self._have[m.key]) & {"", *dims})
                        cur.execute(
                            f"INSERT INTO rollup_cache SELECT $src, site, day, dimension, value, {cols} "
                            f"FROM {table} WHERE day = $day AND list_contains(CAST($new AS VARCHAR[]), dimension)",
                            {"src": self._ids[m.key], "day": m.day, "new": new},
                        )
                        if "" in new:  # the day's first computation: its tables too (they do not depend on dims)
                            for kind in TABLE_KINDS:
                                cur.execute(
                                    f"INSERT INTO {kind}_cache SELECT $src, * FROM {table}_{kind} WHERE day = $day",
                                    {"src": self._ids[m.key], "day": m.day},
                                )
                        self._have[m.key].update(new)
                        self._computed[(m.site, m.day)] = m.key
                # One line per pass over raw files (the costly part): how an operator sees that the dashboards
                # roll days up in memory because the nightly rollups lag. Site names and dates only.
                how = "rolled up again from cached tables" if from_cache else "rolled up in memory"
                log.debug("%s: %s %s (%d dimensions)", how, site, [str(m.day) for m in days], len(dims))
        finally:
            cur.close()

    def _tables_for(
        self, cur: Connection, days: list[MissingDay], table: str, dims: tuple[str, ...], *, locked: bool
    ) -> bool:
        """The rollup rows of ``dims`` of these days (one site) into ``table``, their tables beside it.

        When every one of the days already has its tables in the caches (it was computed for other
        dimensions), they are copied from there instead of sessionizing the raw files again: for today at
        a million events that is seconds a new panel no longer waits. Returns whether they were.
        """
        with contextlib.nullcontext() if locked else self._lock:
            cached = all(m.key in self._ids and "" in self._have.get(m.key, set()) for m in days)
            if cached:
                ids = [self._ids[m.key] for m in days]
                self._copy_tables(cur, table, ids)
                (site,) = cur.execute(
                    "SELECT any_value(site) FROM rollup_cache WHERE list_contains(CAST($ids AS INTEGER[]), src)",
                    {"ids": ids},
                ).fetchone() or (None,)
        if cached:
            rollup_rows(cur, tables(table), table, site, dims)
        else:
            t, site = compute_tables(cur, [f for m in days for f in m.files], table)
            rollup_rows(cur, t, table, site, dims)
        return cached

    def _drop(self, key: str) -> None:
        self._have.pop(key, None)
        src = self._ids.pop(key, None)
        if src is not None:
            self._db.execute("DELETE FROM rollup_cache WHERE src = $src", {"src": src})
            if self._tables_ready:
                for kind in TABLE_KINDS:
                    self._db.execute(f"DELETE FROM {kind}_cache WHERE src = $src", {"src": src})
