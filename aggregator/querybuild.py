"""The one SQL builder: day rows from the per-visit table and the events, and sums of them.

Every answer is computed from **day rows**: ``(day, dimension, value, <components>)``,
the shape of a daily rollup. They come from a rollup file, or are computed here
from the per-visit table (visit dimensions, visit-level filters) or from events
joined to their visits (event dimensions, event-level filters), and add up
exactly over days. A request of several dimensions is one *column* whose value
is the JSON array of theirs.

Identifiers and expressions come only from the fixed tables in
:mod:`aggregator.dimensions` and from relation names made up by the caller;
every user-supplied value (filter values, patterns, file lists) is a bound,
named parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.dimensions import DIMENSIONS
from aggregator.metrics import COMPONENT_NAMES
from aggregator.sessions import ENTRY_COLUMNS, PROFILE_SQL, VISIT_COLUMNS
from collector.schema import MAX_ENGAGED_MS


@dataclass(frozen=True, slots=True)
class Column:
    """What a request groups by: one dimension, or several as one JSON-array value."""

    name: str  # a dimension name, or the names joined by "|"
    sql: str  # over the sessionized events and the per-visit table alike
    per_event: bool  # varies within a visit: computed from events


TOTAL = Column("", "''", False)


def column(dimensions: tuple[str, ...]) -> Column:
    if not dimensions:
        return TOTAL
    if len(dimensions) == 1:
        d = DIMENSIONS[dimensions[0]]
        return Column(d.name, d.sql, d.per_event)
    parts = ", ".join(f"CAST({DIMENSIONS[d].sql} AS VARCHAR)" for d in dimensions)
    return Column("|".join(dimensions), f"to_json([{parts}])", any(DIMENSIONS[d].per_event for d in dimensions))


def _names(columns: list[Column], params: dict[str, Any], key: str) -> str:
    params[key] = [c.name for c in columns]
    return f"${key}"


def _values(columns: list[Column]) -> str:
    return "[" + ", ".join(f"CAST({c.sql} AS VARCHAR)" for c in columns) + "]"


# --- relations ---------------------------------------------------------------------------------------------


def joined_rows_sql(events: str, visits: str) -> str:
    """Events of ``events`` (with their ``day``) and their visit's columns from ``visits``, without sessionizing.

    A visit's parts share its visit columns, so one part per visit is joined;
    an event belongs to the visit of its day key whose first and last second
    enclose it (visits of one day key never overlap).
    """
    vcols = ", ".join(c for c in VISIT_COLUMNS)
    return f"""(
  SELECT e.*, {", ".join(f"v.{c}" for c in VISIT_COLUMNS)}
  FROM {events} e
  JOIN (SELECT day, day_key, {vcols} FROM {visits} WHERE visit_rows = 1
        UNION ALL SELECT DISTINCT day, day_key, {vcols} FROM {visits} WHERE visit_rows > 1) v
    ON e.day = v.day AND e.day_key = v.day_key AND e.ts BETWEEN v.v_start AND v.v_end
)"""


# --- day rows ----------------------------------------------------------------------------------------------


def day_rows_sql(columns: list[Column], params: dict[str, Any], *, visits: str, rows: str | None, scroll: bool) -> str:
    """Day rows of the totals and of every column in ``columns``.

    ``visits`` is the per-visit table (or one derived from filtered rows),
    ``rows`` the matching sessionized events (needed for event columns and
    scroll depth; None if neither is asked for). Three steps keep it cheap:

    * a visit row that is its day key's only row (one visit, its own columns
      unchanged throughout: the common case) is that key's whole contribution
      to its values: those rows are counted by one GROUPING SETS pass;
    * rows of day keys with several rows are grouped per (value, visit) and
      then per (value, day key), which counts distinct visits and visitors
      exactly without ``count(DISTINCT)``;
    * event columns are grouped per (value, visit) from the events.
    """
    visit_cols = [c for c in columns if not c.per_event]
    event_cols = [c for c in columns if c.per_event]
    if event_cols and rows is None:
        raise ValueError("event columns need the sessionized rows")
    names = _names([TOTAL, *visit_cols], params, "vdims")
    # -- single rows: GROUPING SETS over (day) and (day, value) for every visit column
    dsel = "".join(f", CAST({c.sql} AS VARCHAR) AS d{i}" for i, c in enumerate(visit_cols))
    sets = ", ".join(["(day)", *(f"(day, d{i})" for i in range(len(visit_cols)))])
    for i, c in enumerate(visit_cols):
        params[f"vd{i}"] = c.name
    which = "''"
    if visit_cols:
        whens = " ".join(f"WHEN d{i} IS NOT NULL THEN CAST($vd{i} AS VARCHAR)" for i in range(len(visit_cols)))
        which = f"CASE {whens} ELSE '' END"
    value = "coalesce(" + ", ".join([*(f"d{i}" for i in range(len(visit_cols))), "''"]) + ")"
    single = f"""
g1 AS (
  SELECT day{"".join(f", d{i}" for i in range(len(visit_cols)))},
    count(*) FILTER (WHERE n_ev > 0) AS visitors, count(*) FILTER (WHERE n_ev > 0) AS visits,
    sum(n_pv) AS pageviews, sum(n_ev) AS events, count(*) FILTER (WHERE n_ev > 0 AND is_bounce) AS bounces,
    sum(v_dur) FILTER (WHERE n_ev > 0) AS duration_sum, sum(eng) AS engaged_sum,
    count(*) FILTER (WHERE eng IS NOT NULL) AS engaged_n
  FROM (SELECT day, n_pv, n_ev, eng, is_bounce, v_dur{dsel} FROM {visits} WHERE key_rows = 1)
  GROUP BY GROUPING SETS ({sets})
),
single AS (
  SELECT day, {which} AS dimension, {value} AS value,
         visitors, visits, pageviews, events, bounces, duration_sum, engaged_sum, engaged_n FROM g1
)"""
    # -- partial rows per (value, visit): visit rows of several-row keys, and event columns
    partial = f"""count(*) FILTER (WHERE name = 'pageview'), count(*) FILTER (WHERE name <> 'engagement'),
    sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement'), bool_or(is_bounce), max(v_dur)"""
    events_parts = ""
    for i, c in enumerate(event_cols):
        params[f"ed{i}"] = c.name
        expr = f"CAST({c.sql} AS VARCHAR)"
        events_parts += f"""
  UNION ALL SELECT day, CAST($ed{i} AS VARCHAR), {expr}, day_key, vno, {partial}
  FROM {rows} GROUP BY day, day_key, vno, {expr}"""
    multi = f"""
mu AS (
  SELECT day, day_key, vno, n_pv, n_ev, eng, is_bounce, v_dur,
         unnest({names}) AS dimension, unnest({_values([TOTAL, *visit_cols])}) AS value
  FROM {visits} WHERE key_rows > 1
),
parts(day, dimension, value, day_key, vno, n_pv, n_ev, eng, b, dur) AS (
  SELECT day, dimension, value, day_key, vno, n_pv, n_ev, eng, is_bounce, v_dur FROM mu{events_parts}
),
pv AS (
  SELECT day, dimension, value, day_key, vno, sum(n_pv) AS n_pv, sum(n_ev) AS n_ev, sum(eng) AS eng,
         bool_or(b) AS b, max(dur) AS dur
  FROM parts GROUP BY day, dimension, value, day_key, vno
),
k AS (
  SELECT day, dimension, value, day_key,
    count(*) FILTER (WHERE n_ev > 0) AS visits, sum(n_pv) AS pageviews, sum(n_ev) AS events,
    count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces, sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum,
    sum(eng) AS engaged_sum, bool_or(eng IS NOT NULL) AS has_eng
  FROM pv GROUP BY day, dimension, value, day_key
),
multi AS (
  SELECT day, dimension, value, count(*) FILTER (WHERE visits > 0) AS visitors, sum(visits) AS visits,
    sum(pageviews) AS pageviews, sum(events) AS events, sum(bounces) AS bounces,
    sum(duration_sum) AS duration_sum, sum(engaged_sum) AS engaged_sum,
    count(*) FILTER (WHERE has_eng) AS engaged_n
  FROM k GROUP BY day, dimension, value
),
a AS (
  SELECT day, dimension, value, sum(visitors) AS visitors, sum(visits) AS visits, sum(pageviews) AS pageviews,
    sum(events) AS events, sum(bounces) AS bounces, sum(duration_sum) AS duration_sum,
    sum(engaged_sum) AS engaged_sum, sum(engaged_n) AS engaged_n
  FROM (SELECT * FROM single UNION ALL SELECT * FROM multi) GROUP BY day, dimension, value
)"""
    if not scroll:
        return f"WITH {single},{multi}\nSELECT a.*, NULL::BIGINT AS scroll_sum, NULL::BIGINT AS scroll_n FROM a"
    if rows is None:
        raise ValueError("scroll depth needs the sessionized rows")
    first = ", ".join(f"a.{c}" for c in COMPONENT_NAMES if not c.startswith("scroll_"))
    return f"""WITH {single},{multi},{_scroll_ctes(visit_cols, event_cols, params, rows)}
SELECT coalesce(a.day, s.day) AS day, coalesce(a.dimension, s.dimension) AS dimension,
       coalesce(a.value, s.value) AS value, {first}, s.scroll_sum, s.scroll_n
FROM a FULL OUTER JOIN s ON a.day = s.day AND a.dimension = s.dimension AND a.value = s.value"""


#: Metrics whose components an event column gets without knowing the events' visits (no visit id needed).
LIGHT_METRICS = frozenset({"visitors", "pageviews", "events", "time_on_page", "scroll_depth"})


def event_day_rows_sql(columns: list[Column], params: dict[str, Any], *, rows: str, light: bool) -> str:
    """Day rows of event columns only (no totals), from ``rows`` (events, with their visits unless ``light``).

    ``light``: only the components of :data:`LIGHT_METRICS` are computed (the
    others are NULL) — so ``rows`` may be the raw events themselves, with no
    visit joined to them, and distinct visitors are counted per (day, value)
    directly (far fewer groups than one per visitor and value).
    """
    parts = []
    for i, c in enumerate(columns):
        params[f"xd{i}"] = c.name
        expr = f"CAST({c.sql} AS VARCHAR)"
        if light:
            parts.append(
                f"""SELECT day, CAST($xd{i} AS VARCHAR) AS dimension, {expr} AS value,
    count(DISTINCT day_key) FILTER (WHERE name <> 'engagement') AS visitors, NULL::BIGINT AS visits,
    count(*) FILTER (WHERE name = 'pageview') AS pageviews, count(*) FILTER (WHERE name <> 'engagement') AS events,
    NULL::BIGINT AS bounces, NULL::BIGINT AS duration_sum,
    sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS engaged_sum,
    count(DISTINCT day_key) FILTER (WHERE name = 'engagement' AND engaged_ms IS NOT NULL) AS engaged_n
  FROM {rows} GROUP BY day, {expr}"""
            )
        else:
            parts.append(
                f"""SELECT day, CAST($xd{i} AS VARCHAR) AS dimension, value,
    count(*) FILTER (WHERE visits > 0) AS visitors, sum(visits) AS visits, sum(pageviews) AS pageviews,
    sum(events) AS events, sum(bounces) AS bounces, sum(duration_sum) AS duration_sum,
    sum(engaged_sum) AS engaged_sum, count(*) FILTER (WHERE has_eng) AS engaged_n
  FROM (
    SELECT day, value, day_key, count(*) FILTER (WHERE n_ev > 0) AS visits, sum(n_pv) AS pageviews,
      sum(n_ev) AS events, count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces,
      sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum, sum(eng) AS engaged_sum, bool_or(eng IS NOT NULL) AS has_eng
    FROM (
      SELECT day, {expr} AS value, day_key, vno, count(*) FILTER (WHERE name = 'pageview') AS n_pv,
        count(*) FILTER (WHERE name <> 'engagement') AS n_ev,
        sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS eng,
        bool_or(is_bounce) AS b, max(v_dur) AS dur
      FROM {rows} GROUP BY day, day_key, vno, {expr}
    ) GROUP BY day, value, day_key
  ) GROUP BY day, value"""
            )
    return f"""WITH a AS (
  {" UNION ALL ".join(parts)}
),{_scroll_ctes([], columns, params, rows, visit_scroll=False)}
SELECT coalesce(a.day, s.day) AS day, coalesce(a.dimension, s.dimension) AS dimension,
       coalesce(a.value, s.value) AS value,
       {", ".join(f"a.{c}" for c in COMPONENT_NAMES if not c.startswith("scroll_"))}, s.scroll_sum, s.scroll_n
FROM a FULL OUTER JOIN s ON a.day = s.day AND a.dimension = s.dimension AND a.value = s.value"""


def _scroll_ctes(
    visit_cols: list[Column], event_cols: list[Column], params: dict[str, Any], rows: str, *, visit_scroll: bool = True
) -> str:
    """Deepest scroll per (value, day key, page), summed per value: mean over (visitor, page)."""
    scrolled = "name = 'engagement' AND scroll_depth IS NOT NULL"
    vexprs = [f"CAST({c.sql} AS VARCHAR)" for c in visit_cols]
    inner_sel = "".join(f", {e} AS s{i}" for i, e in enumerate(vexprs))
    inner_group = "".join(f", s{i}" for i in range(len(vexprs)))
    event_s = ""
    for i, c in enumerate(event_cols):
        params[f"sed{i}"] = c.name
        expr = f"CAST({c.sql} AS VARCHAR)"
        event_s += f"""
  UNION ALL SELECT day, CAST($sed{i} AS VARCHAR), {expr}, day_key, path, max(scroll_depth)
  FROM {rows} WHERE {scrolled} GROUP BY day, day_key, path, {expr}"""
    svalues = "[''" + "".join(f", s{i}" for i in range(len(vexprs))) + "]"
    if not visit_scroll:  # event columns only
        return f"""
sp(day, dimension, value, day_key, path, m) AS (
  SELECT NULL::DATE, NULL::VARCHAR, NULL::VARCHAR, NULL::UBIGINT, NULL::VARCHAR, NULL::BIGINT WHERE false{event_s}
),
s AS (SELECT day, dimension, value, sum(m) AS scroll_sum, count(*) AS scroll_n FROM sp GROUP BY ALL)"""
    names = _names([TOTAL, *visit_cols], params, "sdims")
    return f"""
sv AS (
  SELECT day, day_key, vno, path{inner_sel}, max(scroll_depth) AS m
  FROM {rows} WHERE {scrolled} GROUP BY day, day_key, vno, path{inner_group}
),
sp(day, dimension, value, day_key, path, m) AS (
  SELECT day, dimension, value, day_key, path, max(m) FROM (
    SELECT day, day_key, path, m, unnest({names}) AS dimension, unnest({svalues}) AS value FROM sv
  ) GROUP BY day, dimension, value, day_key, path{event_s}
),
s AS (SELECT day, dimension, value, sum(m) AS scroll_sum, count(*) AS scroll_n FROM sp GROUP BY ALL)"""


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


def profiles_sql(col: Column, params: dict[str, Any], *, relation: str, values: str | None, where: str) -> str:
    """Distinct visitor profiles (device and network, see sessions.PROFILE_SQL) per value, over all days.

    ``relation`` holds the per-visit table or events of the range; only rows
    that count as a visit (not engagement alone) and match ``where`` count.
    ``values`` names a relation of candidate values (column ``value``), or None for all.
    """
    counted = "n_ev > 0" if not col.per_event else "name <> 'engagement'"
    keep = f"AND value IN (SELECT value FROM {values})" if values else ""
    return f"""SELECT value, count(DISTINCT profile) FROM (
  SELECT CAST({col.sql} AS VARCHAR) AS value, {PROFILE_SQL} AS profile FROM {relation} WHERE {counted} AND ({where})
) WHERE true {keep} GROUP BY value"""


def day_keys_sql(relation: str, *, per_event: bool, where: str) -> str:
    """Per day: distinct visitors matching ``where``, and their distinct profiles overall (one row per day)."""
    counted = "n_ev > 0" if not per_event else "name <> 'engagement'"
    return f"""SELECT day, count(DISTINCT day_key), list(DISTINCT {PROFILE_SQL}) FROM {relation}
WHERE {counted} AND ({where}) GROUP BY day"""


ENTRY_NAMES = tuple(v for v, _ in ENTRY_COLUMNS)
