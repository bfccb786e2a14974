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

Built by aggregator/rollupbuild.py, in this order, each step safe to interrupt
(``ANALYTICS_ROLLUP_FAILPOINT`` kills the process at one, for the tests): the
visits file is published, then the rollup file, then older files of the day are
removed. A day whose rollup is current
but whose visits file is missing is built again, so a crash between the two
renames only costs a rebuild.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from duckdb import DuckDBPyConnection as Connection

from aggregator import conversions
from aggregator.dimensions import ROLLUP_DIMENSIONS, ROLLUP_PAIRS
from aggregator.lake import Lake
from aggregator.metrics import COMPONENT_NAMES
from aggregator.querybuild import Column, column, day_rows_sql
from aggregator.sessions import sessionized_sql
from aggregator.tables import Tables, build_sql, check_sql, tables

#: Bumped when the rollup's rows change meaning or gain dimensions: rollups of an older format stop
#: matching their day's files, so queries roll those days up in memory until `aggregator rollup` rebuilds
#: them. (Days whose raw events are purged keep their older rollup: it lacks only the newer dimensions.)
ROLLUP_FORMAT = 2
#: Bumped when the per-visit tables' columns change: older files stop matching and are rebuilt.
VISITS_FORMAT = 7  # 7: hits.ts_more (funnels read step times from the hits)
#: The three files of a day's per-visit tables (aggregator/tables.py), in the order they are published.
TABLE_KINDS = ("dict", "visits", "hits", "pages")
#: The day's slices file (aggregator/slices.py), published with the tables; optional to a query.
SLICES_KIND = "slices"
#: Every file of the per-visit kinds a build publishes for a day (a day missing one is built again).
BUILT_KINDS = (*TABLE_KINDS, SLICES_KIND)
ROLLUP_FAILPOINTS = ("visits-published", "rollup-published", "done")


def fingerprint(files: list[Path]) -> str:
    names = "\n".join([f"rollup format {ROLLUP_FORMAT}", *sorted(p.name for p in files)])
    return hashlib.sha256(names.encode()).hexdigest()[:20]


def rollup_name(files: list[Path]) -> str:
    """The rollup file of these raw files; its format is in the name too, for days whose raw files are gone."""
    return f"{fingerprint(files)}-f{ROLLUP_FORMAT}.parquet"


def visits_name(files: list[Path], kind: str = "visits") -> str:
    return f"{fingerprint(files)}-{kind}-v{VISITS_FORMAT}.parquet"


def current_tables(lake: Lake, site: str, day: dt.date, raw_files: list[Path]) -> dict[str, Path] | None:
    """The day's per-visit tables built from exactly ``raw_files`` by kind (None: not all built from those files).

    With them, under ``slices``, the day's slices file (aggregator/slices.py) if it is built.

    With them, under ``conv:<goal id>``, the day's conversions files built from those files (for whichever
    goal set, which their names say: queries check it against the goals in force; aggregator/conversions.py).
    """
    if not raw_files:
        return None
    have = {p.name: p for p in Lake.visible_parquet(lake.visits_day_dir(site, day))}
    out = {kind: have.get(visits_name(raw_files, kind)) for kind in TABLE_KINDS}
    if any(p is None for p in out.values()):
        return None
    found = {k: p for k, p in out.items() if p is not None}
    slices = have.get(visits_name(raw_files, SLICES_KIND))  # aggregator/slices.py: optional, a query reads the tables
    if slices is not None:
        found[SLICES_KIND] = slices
    fp = fingerprint(raw_files)
    for name, path in sorted(have.items()):
        parts = conversions.file_parts(name)
        if parts is not None and parts[0] == fp:
            found[f"conv:{parts[2]}"] = path
    return found


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


def rollup_columns(dimensions: tuple[str, ...]) -> list[Column]:
    """The columns of a rollup: each dimension, and the pairs under their internal names."""
    pairs = {name: dims for dims, name in ROLLUP_PAIRS.items()}
    return [column(pairs[d], name=d) if d in pairs else column((d,)) for d in dimensions]


def compute_rollup(
    con: Connection, files: list[str], table: str, dimensions: tuple[str, ...] = ROLLUP_DIMENSIONS
) -> tuple[Tables, str | None]:
    """Rollup rows of the raw ``files`` (one site, any days) into the new temp table ``table``.

    ``table`` is an identifier made up by the caller, never input. Columns:
    site, day, dimension, value, then the components as BIGINT. This is the one
    definition of a rollup: the builder writes it to Parquet, and a querier
    computes it in memory for a day whose rollup is not built yet. The rows of
    each dimension do not depend on the others, so computing some of
    ``ROLLUP_DIMENSIONS`` (plus the totals, dimension ``''``) gives exactly those
    rows of the full rollup. The day's per-visit tables are left in ``<table>_dict``, ``<table>_visits``
    and ``<table>_hits`` (aggregator/tables.py), from which the rollup is computed; returned with the files' site.
    """
    t, site = compute_tables(con, files, table)
    rollup_rows(con, t, table, site, dimensions)
    return t, site


def compute_tables(con: Connection, files: list[str], table: str) -> tuple[Tables, str | None]:
    """The per-visit tables of the raw ``files`` (one sessionization) as ``<table>_dict`` etc., and their site."""
    params: dict[str, object] = {"files": files}
    con.execute(
        f"CREATE TEMP TABLE {table}_rows AS WITH {sessionized_sql('read_parquet($files)')} SELECT * FROM rows", params
    )
    (site,) = con.execute(f"SELECT any_value(site) FROM {table}_rows").fetchone() or (None,)
    columns = {r[0] for r in con.execute(f"DESCRIBE {table}_rows").fetchall()}
    for statement in build_sql(f"{table}_rows", table, has_props="props" in columns):
        con.execute(statement)
    con.execute(f"DROP TABLE {table}_rows")
    collision = con.execute(check_sql(table)).fetchone()
    if collision is not None:  # never seen: 64-bit hashes of a day's few thousand values
        raise RuntimeError(f"two values of {collision[1]} on {collision[0]} share a code: rebuild with a new hash")
    return tables(table), site


def rollup_rows(con: Connection, t: Tables, table: str, site: str | None, dimensions: tuple[str, ...]) -> None:
    """The rollup rows of ``dimensions`` (and the totals) of the per-visit tables ``t`` into the new temp table
    ``table`` (see :func:`compute_rollup`): the same rows whether the tables were just built or copied from a
    querier's cache."""
    p: dict[str, object] = {"site": site}
    inner = day_rows_sql(
        [Column("", (), False), *rollup_columns(dimensions)],
        p,
        visits=t.visits,
        hits=t.hits,
        pages=t.pages,
        dictionary=t.dict,
        scroll=True,
    )
    comps = ", ".join(f"CAST(coalesce({c}, 0) AS BIGINT) AS {c}" for c in COMPONENT_NAMES)
    con.execute(
        f"CREATE TEMP TABLE {table} AS SELECT CAST($site AS VARCHAR) AS site, day, dimension, value, {comps} "
        f"FROM ({inner})",
        p,
    )
