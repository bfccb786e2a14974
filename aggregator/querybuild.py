"""The one SQL builder: day rows from the coded per-visit and hits tables, and sums of them.

Every answer is computed from **day rows** — ``(day, dimension, value,
<components>)``, the shape of a daily rollup — so rollup files, and rows
computed here from the tables of aggregator/tables.py, add up the same way.
A request groups by one *column*: one dimension, several as one JSON-array
value, a time bucket, or nothing (the totals). Rows are grouped by the codes
of the column's dimensions (integers: several times faster than text), and
the codes are turned into the values they stand for at the end, from the
day's dictionary. The components of each kind of relation (visits, hits,
pages) are aggregator/querycomps.py's.

Identifiers and expressions come only from the fixed tables in
:mod:`aggregator.dimensions` and :mod:`aggregator.tables` and from relation
names made up by the caller; every user-supplied value (filter values,
patterns) is a bound, named parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aggregator.dimensions import GOAL, PROPS, Dimension, dimension
from aggregator.metrics import COMPONENT_NAMES
from aggregator.querycomps import (
    ALL_COMPONENTS,
    COMPS,
    event_comps,
    group_sql,
    page_comps,
    scroll_comps,
    visit_scroll,
    visit_sets,
)
from aggregator.tables import VISIT_CODES, code


@dataclass(frozen=True, slots=True)
class Part:
    """One thing a column groups by: a code column and the dictionary dimension it codes, or an expression."""

    expr: str
    dimension: str | None = None  # the dictionary dimension of a code column; None for an expression


@dataclass(frozen=True, slots=True)
class Column:
    """What a request groups by: one dimension, several as one JSON-array value, a time bucket, or nothing."""

    name: str  # a dimension name, the names joined by "|", or "" for the totals
    parts: tuple[Part, ...]
    per_event: bool  # varies within a visit: from the hits


TOTAL = Column("", (), False)
HOUR = "strftime(day + to_hours(CAST(hour AS INTEGER)), '%Y-%m-%d %H:00:00')"


def part(dimension: str, start: dt.date | None = None) -> Part:
    if dimension == "time:day":
        return Part("strftime(day, '%Y-%m-%d')")
    if dimension == "time:week":  # the first week of a range starts with it (as Plausible labels it)
        first = f"DATE '{(start or dt.date(1970, 1, 1)).isoformat()}'"
        return Part(f"strftime(greatest(date_trunc('week', day), {first}), '%Y-%m-%d')")
    if dimension == "time:month":
        return Part("strftime(date_trunc('month', day), '%Y-%m-%d')")
    if dimension == "time:hour":
        return Part(HOUR)
    if dimension == GOAL or dimension.startswith(PROPS):  # values in the rows themselves, no dictionary
        d = _dimension(dimension)
        return Part(d.sql)
    return Part(code(dimension), dimension)


def _dimension(name: str) -> Dimension:
    d = dimension(name)
    if d is None:
        raise KeyError(name)
    return d


def _per_event(name: str) -> bool:
    return _dimension(name).per_event


def column(dimensions: tuple[str, ...], start: dt.date | None = None, name: str | None = None) -> Column:
    """The column of these dimensions (``name``: an internal rollup name, e.g. a pair)."""
    if not dimensions:
        return TOTAL
    per_event = any(_per_event(d) for d in dimensions)
    return Column(name or "|".join(dimensions), tuple(part(d, start) for d in dimensions), per_event)


def value_sql(col: Column, dictionary: str, alias: str = "c") -> tuple[str, str]:
    """(joins, value expression): the text a column's grouped row stands for, from the day's dictionary."""
    joins, values = "", []
    for i, p in enumerate(col.parts):
        if p.dimension is None:
            values.append(f"{alias}.g{i}")
        else:
            joins += (
                f" JOIN {dictionary} k{i} ON k{i}.day = {alias}.day AND k{i}.dimension = '{p.dimension}'"
                f" AND k{i}.code = {alias}.g{i}"
            )
            values.append(f"k{i}.value")
    if not values:
        return "", "''"
    if len(values) == 1:
        return joins, f"CAST({values[0]} AS VARCHAR)"
    return joins, "CAST(to_json([" + ", ".join(f"CAST({v} AS VARCHAR)" for v in values) + "]) AS VARCHAR)"


def day_rows_sql(
    columns: list[Column],
    params: dict[str, Any],
    *,
    visits: str | None,
    hits: str | None,
    dictionary: str,
    scroll: bool | frozenset[str],
    light: bool | frozenset[str] = False,
    pages: str | None = None,
    hits_for: dict[str, str] | None = None,
    needs: dict[str, frozenset[str]] | None = None,
    ctes: tuple[str, ...] = (),
    others: int = 0,
) -> str:
    """Day rows ``(day, dimension, value, <components>)`` of every column.

    Visit columns (and the totals) come from ``visits`` (a relation of the
    per-visit table's shape: the table itself, filtered, or one derived from
    filtered hits by :func:`visits_from_hits_sql`), the page column and scroll
    depth from ``pages`` when given (it holds whole pages: no filter on event
    names), other event columns from ``hits``. ``scroll``: True, or the names
    of the columns that need scroll depth; ``light``: event columns (True, or
    their names) whose requests need no visit metrics; ``needs``: the components each visit column's requests
    need (all when absent). ``hits_for``: columns read from another relation of the
    hits' shape (the goal column: hits expanded to the goals they convert). ``ctes``: CTEs of the statement
    the relations may name; ``others`` > 0: ``visits`` are fused rows with memberships
    (querycomps.visit_sets), and the visit columns' rows carry ``n0``, ``v0`` … ``v{others}`` too (the other
    columns' rows do not: NULL, by name).
    """
    parts = []
    base_hits = hits
    with_ = list(ctes)
    if visits is not None and not visits.isidentifier():
        # Read by every visit column: once, into memory, for this statement (a temp table costs a write).
        with_.append(f"vrows AS MATERIALIZED {visits}")
        visits = "vrows"
    # Visit columns' rows come from one GROUPING SETS scan of the visits (querycomps.visit_sets).
    grouped = [c for c in columns if not c.per_event]
    sets_ctes: list[str] = []
    from_sets: dict[str, str] = {}
    if grouped and visits is not None:
        sets_ctes, from_sets = visit_sets(grouped, visits, needs or {}, "vsets", others=others)
    with_ += sets_ctes
    extras = ("n0", *(f"v{j}" for j in range(others + 1))) if others else ()
    for i, col in enumerate(columns):
        hits = (hits_for or {}).get(col.name, base_hits)
        params[f"col{i}"] = col.name
        is_light = light is True or (not isinstance(light, bool) and col.name in light)
        wants_scroll = scroll is True or (not isinstance(scroll, bool) and col.name in scroll)
        page_only = col.per_event and all(p.expr == "c_page" for p in col.parts)  # as Scope.day_rows decides
        g = "".join(f", g{j}" for j in range(len(col.parts)))
        on = " AND ".join(["a.day = s.day", *(f"a.g{j} = s.g{j}" for j in range(len(col.parts)))])
        pick = "".join(f", coalesce(a.g{j}, s.g{j}) AS g{j}" for j in range(len(col.parts)))
        mine = extras if not col.per_event else ()
        joined = ", ".join(f"a.{c}" for c in (*COMPS.split(", "), *mine))
        if page_only and pages is not None:
            coded = f"({page_comps(col, pages, (needs or {}).get(col.name, ALL_COMPONENTS))})"
        else:
            if col.per_event:
                if hits is None:
                    raise ValueError("event columns need the hits")
                comps = event_comps(col, hits, light=is_light)
            else:
                if visits is None:
                    raise ValueError("visit columns need the visits")
                comps = from_sets[col.name]
            scroll_rows = None
            if wants_scroll and pages is not None and not col.per_event:
                scroll_rows = visit_scroll(col, pages)
            elif wants_scroll and hits is not None:
                scroll_rows = scroll_comps(col, hits)
            if scroll_rows is not None:
                coded = f"""(SELECT coalesce(a.day, s.day) AS day{pick}, {joined}, s.scroll_sum, s.scroll_n
                FROM ({comps}) a FULL OUTER JOIN ({scroll_rows}) s ON {on})"""
            else:
                kept = "".join(f", {x}" for x in mine)
                coded = f"(SELECT day{g}, {COMPS}{kept}, NULL::BIGINT AS scroll_sum, NULL::BIGINT AS scroll_n " \
                        f"FROM ({comps}))"  # fmt: skip
        joins, value = value_sql(col, dictionary)
        comps_out = ", ".join(f"c.{c}" for c in COMPONENT_NAMES)
        comps_out += "".join(f", c.{x}" for x in mine)
        parts.append(f"SELECT c.day, CAST($col{i} AS VARCHAR) AS dimension, {value} AS value, {comps_out} "
                     f"FROM {coded} c{joins}")  # fmt: skip
    head = f"WITH {', '.join(with_)}\n" if with_ else ""
    return head + f"\nUNION ALL{' BY NAME' if others else ''}\n".join(parts)


def visits_from_hits_sql(
    hits: str, codes_needed: tuple[str, ...] = VISIT_CODES, visits: str | None = None, *, pages: bool = False
) -> str:
    """A relation of the per-visit table's shape holding only what the given (filtered) hits contribute.

    A hit of a day key with one visit row (``key_rows`` 1, most of them) belongs to that row: such hits are
    summed by (day, day key) alone, and the row's codes are read from ``visits`` (the per-visit table: a join
    costs half of carrying the codes through the grouping) or, without it, carried. Only the other hits need
    the grouping by every code and the window counts.

    ``pages``: ``hits`` is a relation of the pages table's shape instead (whole pages: under a filter only on
    pages and visits, the matching pages are the matching hits grouped by page, fewer rows to read), whose
    rows carry their pageviews, counted events and engaged time already summed.
    """
    codes = "".join(f", {c}" for c in codes_needed)
    sums = """sum(n) FILTER (WHERE kind = 0) AS n_pv,
         coalesce(sum(n) FILTER (WHERE kind <> 1), 0) AS n_ev, sum(eng) FILTER (WHERE kind = 1) AS eng"""
    if pages:
        sums = "sum(n_pv) AS n_pv, sum(n_ev) AS n_ev, sum(eng) AS eng"
    if visits is not None:
        v_codes = "".join(f", v.{c}" for c in codes_needed)
        single = f"""SELECT v.day, v.day_key, v.vno{v_codes}, h.n_pv, h.n_ev, h.eng, v.is_bounce, v.v_dur, v.profile,
         1 AS key_rows, 1 AS visit_rows
  FROM (SELECT day, day_key, {sums} FROM {hits} WHERE key_rows = 1 GROUP BY day, day_key) h
  JOIN {visits} v ON v.day = h.day AND v.day_key = h.day_key"""
    else:
        any_codes = "".join(f", any_value({c}) AS {c}" for c in codes_needed)
        single = f"""SELECT day, day_key, any_value(vno) AS vno{any_codes}, {sums}, bool_or(is_bounce) AS is_bounce,
         max(v_dur) AS v_dur, any_value(profile) AS profile, 1 AS key_rows, 1 AS visit_rows
  FROM {hits} WHERE key_rows = 1 GROUP BY day, day_key"""
    return f"""(
  {single}
  UNION ALL
  SELECT day, day_key, vno{codes}, {sums}, bool_or(is_bounce) AS is_bounce, max(v_dur) AS v_dur,
         any_value(profile) AS profile,
         count(*) OVER (PARTITION BY day, day_key) AS key_rows,
         count(*) OVER (PARTITION BY day, day_key, vno) AS visit_rows
  FROM {hits} WHERE key_rows > 1 GROUP BY day, day_key, vno{codes}
)"""


def valued_sql(col: Column, relation: str, dictionary: str) -> str:
    """The rows of ``relation`` with the value of ``col`` they stand for, as column ``value``."""
    sel, _ = group_sql(col)
    joins, value = value_sql(col, dictionary)
    return f"(SELECT c.*, {value} AS value FROM (SELECT *{sel} FROM {relation}) c{joins})"


# --- sums of day rows --------------------------------------------------------------------------------------


def sums_sql(source: str, where: str = "true") -> str:
    """Per (dimension, value): the components summed over days, and the most visitors on any one day.

    The day totals (dimension ``''``) keep their day (time series are bucketed from them).
    """
    sums = ", ".join(f"sum({c})" for c in COMPONENT_NAMES)
    return f"""SELECT dimension, value, CASE WHEN dimension = '' THEN day END AS d, {sums}, max(visitors)
FROM {source} WHERE {where}
GROUP BY dimension, value, d"""


def rollup_sums_sql(dimensions: tuple[str, ...], params: dict[str, Any], *, source: str, ids: str) -> str:
    """Rollup rows of the sources in ``ids`` (our own parameter name) summed once for a whole page."""
    params["sumdims"] = list(dimensions)
    return sums_sql(
        source,
        f"list_contains(CAST({ids} AS INTEGER[]), src) "
        "AND (dimension = '' OR list_contains(CAST($sumdims AS VARCHAR[]), dimension))",
    )


#: Columns of the coded tables a query reads besides codes (the rest of aggregator/tables.py's is not read).
VISIT_READ = "day, day_key, vno, n_pv, n_ev, eng, is_bounce, v_dur, key_rows, visit_rows, profile"
HITS_READ = (
    "day, day_key, vno, c_page, c_name, hour, kind, props, n, eng, scroll, first_ts, last_ts, is_bounce, v_dur, "
    "key_rows, visit_rows, profile"
)
PAGES_READ = "day, day_key, vno, c_page, n_pv, n_ev, eng, scroll, is_bounce, v_dur, key_rows, visit_rows, profile"
