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


def day_rows_sql_of(
    files: list[Path],
    scopes: list[tuple[tuple[Expr, ...], frozenset[str]]],
    names: dict[str, str],
    params: dict[str, Any],
) -> str:
    """Day rows of several scopes over the same days, from one read of their slices ``files``.

    ``scopes``: each scope's filters and the components it needs (aggregator/querycomps.py's names); ``names``:
    the columns to compute (rollup name → the column's name in the day rows; ``''`` the totals). One row per
    ``(day, dimension, value)`` that any scope's cells hold, with ``n{i}`` (how many of scope ``i``'s cell rows
    it sums: 0 when the row is not the scope's) and ``s{i}_<component>`` (NULL for a component scope ``i`` does
    not need: a neighbour is compared by its visitors alone, and every summed column costs about as much as the
    scan). A day without cells gives one row of dimension :data:`INEXACT`.

    Two reads of the files, each grouped as it is read: the asked dimensions' rows, and the totals rows (the
    first row group of each file: they sort first) for the cell dimensions' own rows. A shared in-memory copy
    of the matching rows cost more than the second read saves.
    """
    conds = [_Cells(params, "", prefix="sl_").all(filters) for filters, _ in scopes]
    rn = [n for n in names if n not in CELL]
    params["sl_rn"], params["sl_cn"] = [*rn, INEXACT], [*(names[n] for n in rn), INEXACT]
    summed: list[list[str]] = [
        [c for c in COMPONENT_NAMES if c in needs or (c.startswith("scroll_") and "scroll" in needs)]
        for _, needs in scopes
    ]
    read = sorted({c for cs in summed for c in cs}, key=COMPONENT_NAMES.index)
    flags = ", ".join(f"({cond}) AS m{i}" for i, cond in enumerate(conds))
    # A day without cells keeps only its marker row: read whatever the filters, so that the caller sees it.
    anyone = " OR ".join(f"({cond})" for cond in conds)
    # sum(CASE …) rather than sum(…) FILTER: measured faster over these rows. One scope alone reads only its
    # own rows (and markers, which replace a day's rows): plain sums, half the cost of the tested ones.
    one = len(scopes) == 1
    aggs = ", ".join(
        ("count(*)" if one else f"count(*) FILTER (WHERE m{i})")
        + f" AS n{i}, "
        + ", ".join(
            (f"sum({c})" if one else f"sum(CASE WHEN m{i} THEN {c} END)") + f" AS s{i}_{c}"
            if c in summed[i]
            else f"NULL::BIGINT AS s{i}_{c}"
            for c in COMPONENT_NAMES
        )
        for i in range(len(scopes))
    )
    listed = ", ".join(sql_path(f) for f in files)
    outs = ", ".join(f"g.n{i}, " + ", ".join(f"g.s{i}_{c}" for c in COMPONENT_NAMES) for i in range(len(scopes)))
    parts = [
        f"""SELECT g.day, m.cn AS dimension, g.value, {outs}
FROM (SELECT day, dimension, value, {aggs}
      FROM (SELECT day, dimension, value, {", ".join(read)}, {flags} FROM read_parquet([{listed}])
            WHERE list_contains(CAST($sl_rn AS VARCHAR[]), dimension) AND ({anyone} OR dimension = '{INEXACT}'))
      GROUP BY day, dimension, value) g
JOIN (SELECT unnest(CAST($sl_rn AS VARCHAR[])) AS rn, unnest(CAST($sl_cn AS VARCHAR[])) AS cn) m
  ON m.rn = g.dimension"""
    ]
    own = [(d, c) for d, c in CELL.items() if d in names]
    if own:
        for i, (d, _) in enumerate(own):
            params[f"sl_own{i}"] = names[d]
        pairs = ", ".join(f"(CAST($sl_own{i} AS VARCHAR), r.{col})" for i, (_, col) in enumerate(own))
        cols = ", ".join([*(col for _, col in own), *read])
        parts.append(
            f"""SELECT day, dim AS dimension, val AS value, {aggs}
FROM (SELECT day, {cols}, {flags} FROM read_parquet([{listed}]) WHERE dimension = '' AND ({anyone})) r,
     LATERAL (VALUES {pairs}) t(dim, val)
GROUP BY day, dim, val"""
        )
    return "\nUNION ALL\n".join(parts)
