"""Daily slices: each rollup dimension's rows among the visits that have one value of a slice dimension.

Clicking a row of the browser, OS, device or channel panel filters the page by ``is`` that one value; the
per-visit tables answer such a page by scanning and grouping the day's matching visits and pages, several
times the cost of summing rollup rows. A day's **slices** are those answers computed once, when the day's
rollup is built: for every value ``v`` of every dimension in :data:`SLICE_DIMENSIONS` and every column of
:data:`SLICE_COLUMNS`, the day rows (the rollups' shape: day, dimension, value, components) of the visits
with ``v``, plus their totals (dimension ``''``). A scope filtered by one such value over whole days reads
them instead of the tables (aggregator/scope.py); the privacy rules' probes (profiles, the exact
``(other)``) still read the tables, for the few rows that need them.

The rows are computed by the same SQL as every other day row (:func:`aggregator.querybuild.day_rows_sql`,
over two-dimension columns), so they equal what the tables give under the filter: tested against it on
adversarial lakes. Additive over days like the rollups (visitors are distinct day keys per day).

A slice file holds cross-tabulations of two dimensions per day, more than a day's rollup keeps after its
raw events are purged, so it lives with the per-visit tables (one file per site and day,
``visits/site=/day=/<fingerprint>-slices-v<format>.parquet``), is published with them and purged with
them (PRIVACY.md "derived records"). A day without one is answered from the tables, exactly as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from duckdb import DuckDBPyConnection as Connection

from aggregator.asks import Ask
from aggregator.dimensions import SLICE_COLUMNS, SLICE_DIMENSIONS
from aggregator.filters import Expr, Filter
from aggregator.lake import sql_path
from aggregator.metrics import COMPONENT_NAMES
from aggregator.querybuild import Column, column, day_rows_sql
from aggregator.tables import Tables

#: Rows of a file per Parquet row group: a read selects one (dimension, value) of a file sorted by them, and
#: small groups let the scan skip the rest by their min/max statistics.
ROW_GROUP = 8192
_SEP = ">"  # between the slice dimension and the column in the build's internal column names


def columns(d: str) -> list[Column]:
    """The build's columns of one slice dimension: its own (each value's totals) and its pair with each column."""
    return [column((d,), name=d + _SEP), *(column((d, x), name=d + _SEP + x) for x in SLICE_COLUMNS if x != d)]


def build(con: Connection, t: Tables, table: str, site: str | None) -> None:
    """The slices of the per-visit tables ``t`` (any days) into the new temp table ``table`` (a name made up by
    the caller): site, day, fdim, fvalue, dimension, value, then the components as BIGINT.

    One statement per slice dimension (each the size of the rollup's: all of them in one ran out of memory).
    """
    comps = ", ".join(f"CAST(coalesce({c}, 0) AS BIGINT) AS {c}" for c in COMPONENT_NAMES)
    own = f"ends_with(dimension, '{_SEP}')"  # a value's totals: the value itself, not a pair
    for i, d in enumerate(SLICE_DIMENSIONS):
        p: dict[str, object] = {"site": site}
        inner = day_rows_sql(columns(d), p, visits=t.visits, hits=t.hits, pages=t.pages, dictionary=t.dict, scroll=True)
        head = f"CREATE TEMP TABLE {table} AS" if i == 0 else f"INSERT INTO {table}"
        con.execute(
            f"""{head}
SELECT CAST($site AS VARCHAR) AS site, day, split_part(dimension, '{_SEP}', 1) AS fdim,
       CASE WHEN {own} THEN value ELSE json_extract_string(value, '$[0]') END AS fvalue,
       CASE WHEN {own} THEN '' ELSE split_part(dimension, '{_SEP}', 2) END AS dimension,
       CASE WHEN {own} THEN '' ELSE json_extract_string(value, '$[1]') END AS value, {comps}
FROM ({inner}) WHERE dimension <> ''""",
            p,
        )


def copy_sql(table: str, where: str, path: Path) -> str:
    """The statement that writes the rows of ``table`` matching ``where`` (our own text) to ``path``."""
    return (
        f"COPY (SELECT * FROM {table} WHERE {where} ORDER BY fdim, fvalue, dimension, value) "
        f"TO {sql_path(path)} (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})"
    )


def slice_of(filters: tuple[Expr, ...]) -> tuple[str, str] | None:
    """(dimension, value) when ``filters`` are one ``is`` of one value of a slice dimension, else None."""
    if len(filters) != 1:
        return None
    f = filters[0]
    if (
        isinstance(f, Filter)
        and f.op == "is"
        and len(f.values) == 1
        and f.case_sensitive
        and f.dimension in SLICE_DIMENSIONS
    ):
        return f.dimension, f.values[0]
    return None


def answers(a: Ask) -> bool:
    """Whether a slice holds the rows of a column (totals and time buckets: from its totals)."""
    return a.rollup_name == "" or a.rollup_name in SLICE_COLUMNS


def day_rows_sql_of(files: list[Path], fdim: str, fvalue: str, names: dict[str, str], params: dict[str, Any]) -> str:
    """Day rows ``(day, dimension, value, <components>)`` of one slice value for the columns ``names`` (rollup
    name → the column's name in the day rows; ``''`` the totals), from the days' slice ``files``.

    The column of the slice dimension itself is its one value, with the totals' figures.
    """
    params.update(sl_fdim=fdim, sl_fvalue=fvalue)
    rn = [n for n in names if n != fdim]
    params["sl_rn"], params["sl_cn"] = rn, [names[n] for n in rn]
    comps = ", ".join(f"s.{c}" for c in COMPONENT_NAMES)
    listed = ", ".join(sql_path(f) for f in files)
    sql = f"""SELECT s.day, m.cn AS dimension, s.value, {comps}
FROM read_parquet([{listed}]) s
JOIN (SELECT unnest(CAST($sl_rn AS VARCHAR[])) AS rn, unnest(CAST($sl_cn AS VARCHAR[])) AS cn) m ON m.rn = s.dimension
WHERE s.fdim = $sl_fdim AND s.fvalue = $sl_fvalue"""
    if fdim in names:
        params["sl_own"] = names[fdim]
        sql += f"""
UNION ALL
SELECT s.day, CAST($sl_own AS VARCHAR) AS dimension, s.fvalue AS value, {comps}
FROM read_parquet([{listed}]) s WHERE s.fdim = $sl_fdim AND s.fvalue = $sl_fvalue AND s.dimension = ''"""
    return sql
