"""Daily slices: every rollup dimension's rows per (browser, OS, device) cell, so that filters on those three
are answered by summing rows, as an unfiltered page is.

Clicking a row of the browser, OS or device panel filters the page by it; the per-visit tables answer such
a page by scanning and grouping the day's matching visits and pages, several times the cost of summing
rollup rows. A day's **slices** are the rollup's rows split by *cell*, one cell per (browser, OS, device)
of the day's visits: for each column of :data:`SLICE_COLUMNS` and the totals (dimension ``''``), the day
rows (day, dimension, value, components) of the visits of each cell. The three are derived from the
User-Agent (and its client hints) that the day key is keyed with, so a visitor normally belongs to one
cell a day, and any filter whose every condition is on those three (``is``, ``is_not``, ``contains``,
``matches``, several values, nested and/or/not: a click, its neighbours, an ``or`` of two panels) selects
whole cells: its answer is the sum of the matching cells' rows, exactly (aggregator/scope.py).

Exactness needs every day key in one cell. A day where one is not (a browser whose client hints changed
between two events) has no cells: its slices file holds one marker row, and a query over it reads the
tables as before. So do days without a slices file (built before them). The privacy rules' probes (profiles,
the exact ``(other)``) still read the tables, for the few rows that need them.

The rows are computed by the same SQL as every other day row (:func:`aggregator.querybuild.day_rows_sql`,
over four-dimension columns), so they equal what the tables give (tested against them and the oracle).
Scroll depth is kept for the totals and the page column only (a visit column's is rarely asked, and cost
as much as the rest): a request for it on another column reads the tables.

A slices file holds cross-tabulations per day, more than a day's rollup keeps after its raw events are
purged, so it lives with the per-visit tables (``visits/site=/day=/<fingerprint>-slices-v<format>.parquet``),
is published with them and purged with them (PRIVACY.md "derived records").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from duckdb import DuckDBPyConnection as Connection

from aggregator.asks import Ask
from aggregator.dimensions import SLICE_COLUMNS, SLICE_DIMENSIONS
from aggregator.filters import NEGATED, Compiler, Expr, Filter, leaves, value_condition
from aggregator.lake import sql_path
from aggregator.metrics import COMPONENT_NAMES
from aggregator.querybuild import Column, column, day_rows_sql
from aggregator.tables import Tables, code

#: Rows of a file per Parquet row group: a read selects some dimensions of a file sorted by dimension, and
#: small groups let the scan skip the rest by their min/max statistics.
ROW_GROUP = 8192
#: The marker row of a day whose cells cannot be summed (a day key in two of them).
INEXACT = "#inexact"
#: The text column of each cell dimension in a slices file.
CELL: dict[str, str] = {d: d.split(":", 1)[1] for d in SLICE_DIMENSIONS}
_TOTALS = "#totals"  # the build's name for the cells' totals column
#: Columns whose scroll depth a slice holds (the totals are '').
SCROLL_COLUMNS = frozenset({"", "event:page"})


def _columns() -> list[Column]:
    """The build's columns: the cells' totals, and each column a slice holds (the cell dimensions themselves
    are read from the totals: a cell has one value of each)."""
    cells = tuple(SLICE_DIMENSIONS)
    out = [column(cells, name=_TOTALS)]
    out += [column((*cells, x), name=x) for x in SLICE_COLUMNS if x not in CELL]
    return out


def build(con: Connection, t: Tables, table: str, site: str | None) -> None:
    """The slices of the per-visit tables ``t`` (any days) into the new temp table ``table`` (a name made up by
    the caller): site, day, the cell's values, dimension, value, then the components as BIGINT."""
    p: dict[str, object] = {"site": site}
    scroll = frozenset({_TOTALS, "event:page"})
    inner = day_rows_sql(_columns(), p, visits=t.visits, hits=t.hits, pages=t.pages, dictionary=t.dict, scroll=scroll)
    comps = ", ".join(f"CAST(coalesce({c}, 0) AS BIGINT) AS {c}" for c in COMPONENT_NAMES)
    totals = f"dimension = '{_TOTALS}'"
    cells = ", ".join(f"json_extract_string(value, '$[{i}]') AS {col}" for i, col in enumerate(CELL.values()))
    last = len(CELL)
    con.execute(
        f"""CREATE TEMP TABLE {table} AS
SELECT CAST($site AS VARCHAR) AS site, day, {cells},
       CASE WHEN {totals} THEN '' ELSE dimension END AS dimension,
       CASE WHEN {totals} THEN '' ELSE json_extract_string(value, '$[{last}]') END AS value, {comps}
FROM ({inner})""",
        p,
    )
    # Days with a day key in two cells: their rows are replaced by the marker.
    codes = ", ".join(code(d) for d in SLICE_DIMENSIONS)
    split = f"""SELECT DISTINCT day FROM (
  SELECT day, day_key FROM {t.visits} GROUP BY day, day_key HAVING count(DISTINCT ({codes})) > 1)"""
    con.execute(f"CREATE TEMP TABLE {table}_split AS {split}")
    con.execute(f"DELETE FROM {table} WHERE day IN (SELECT day FROM {table}_split)")
    nulls = ", ".join(f"NULL AS {col}" for col in CELL.values())
    zeros = ", ".join(f"0 AS {c}" for c in COMPONENT_NAMES)
    con.execute(
        f"INSERT INTO {table} SELECT CAST($site AS VARCHAR), day, {nulls}, '{INEXACT}', '', {zeros} FROM {table}_split",
        {"site": site},
    )
    con.execute(f"DROP TABLE {table}_split")


def copy_sql(table: str, where: str, path: Path) -> str:
    """The statement that writes the rows of ``table`` matching ``where`` (our own text) to ``path``."""
    return (
        f"COPY (SELECT * FROM {table} WHERE {where} ORDER BY dimension, value) "
        f"TO {sql_path(path)} (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})"
    )


def answerable(filters: tuple[Expr, ...]) -> bool:
    """Whether every condition of ``filters`` (at least one) is on a cell dimension."""
    found = [leaf for f in filters for leaf in leaves(f)]
    return bool(found) and all(leaf.dimension in CELL for leaf in found)


def answers(a: Ask, scroll: bool) -> bool:
    """Whether a slice holds the rows of a column (totals and time buckets: from its totals)."""
    name = a.rollup_name
    if name is None or (name != "" and name not in SLICE_COLUMNS and name not in CELL):
        return False
    return not scroll or name in SCROLL_COLUMNS


class _Cells(Compiler):
    """Filter expressions over a slices file's cell columns: each condition on the cell's text value, with the
    same operators as over the coded tables' dictionary."""

    def leaf(self, f: Filter) -> str:
        positive = NEGATED.get(f.op, f.op)
        cond = value_condition(
            Filter(positive, f.dimension, f.values, f.case_sensitive), CELL[f.dimension], self._param
        )
        return f"NOT ({cond})" if f.op in NEGATED else f"({cond})"


def day_rows_sql_of(files: list[Path], filters: tuple[Expr, ...], names: dict[str, str], params: dict[str, Any]) -> str:
    """Day rows ``(day, dimension, value, <components>)`` of the cells ``filters`` select, for the columns
    ``names`` (rollup name → the column's name in the day rows; ``''`` the totals), from the days' slices
    ``files``; a day without cells gives a row of dimension :data:`INEXACT`.

    The matching rows of the columns asked are read once (an in-memory CTE), then grouped per column.
    """
    cond = _Cells(params, "", prefix="sl_").all(filters)
    rn = [n for n in names if n not in CELL]
    params["sl_rn"], params["sl_cn"] = rn, [names[n] for n in rn]
    sums = ", ".join(f"sum({c}) AS {c}" for c in COMPONENT_NAMES)
    parts = [
        f"""SELECT s.day, m.cn AS dimension, s.value, {sums}
FROM sl_rows s
JOIN (SELECT unnest(CAST($sl_rn AS VARCHAR[])) AS rn, unnest(CAST($sl_cn AS VARCHAR[])) AS cn) m ON m.rn = s.dimension
GROUP BY s.day, m.cn, s.value"""
    ]
    for i, (dim, col) in enumerate((d, c) for d, c in CELL.items() if d in names):
        params[f"sl_own{i}"] = names[dim]
        parts.append(
            f"""SELECT s.day, CAST($sl_own{i} AS VARCHAR) AS dimension, s.{col} AS value, {sums}
FROM sl_rows s WHERE s.dimension = '' GROUP BY s.day, s.{col}"""
        )
    parts.append(f"SELECT DISTINCT day, dimension, '' AS value, {', '.join(f'0 AS {c}' for c in COMPONENT_NAMES)} "
                 f"FROM sl_rows WHERE dimension = '{INEXACT}'")  # fmt: skip
    params["sl_dims"] = [*rn, INEXACT]  # the cell columns come from the totals ('', always asked)
    listed = ", ".join(sql_path(f) for f in files)
    rows = f"""sl_rows AS MATERIALIZED (SELECT * FROM read_parquet([{listed}])
  WHERE list_contains(CAST($sl_dims AS VARCHAR[]), dimension) AND (({cond}) OR dimension = '{INEXACT}'))"""
    return f"WITH {rows}\n" + "\nUNION ALL\n".join(parts)
