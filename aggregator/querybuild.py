"""The one SQL builder: raw-event scans with sessionization, and rollup sums.

Identifiers and expressions come only from the fixed tables in
:mod:`aggregator.dimensions`; every user-supplied value (filter values, the
file lists of the days in range) is a bound, named parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.dimensions import DIMENSIONS
from aggregator.metrics import BOUNCE_ENGAGED_MS, COMPONENT_NAMES, VISIT_GAP_SECONDS
from collector.schema import MAX_ENGAGED_MS


@dataclass(frozen=True, slots=True)
class Filter:
    op: str  # "is", "is_not", "contains"
    dimension: str
    values: tuple[str, ...]


FILTER_OPS = ("is", "is_not", "contains")

#: Event columns behind the visit dimensions that are not derived from the entry event or the exit page.
#: Derived from the same IP and UA as the day key, they are constant within a visit in practice; they are
#: still grouped on (not picked once per visit), so a visit where one changes counts exactly as per event.
OWN_COLUMNS = ("browser", "browser_version", "os", "os_version", "device", "isp", "asn", "network_domain")

_ENTRY = (
    "{'path': path, 'source': referrer_source, 'host': referrer_host, 'rpath': referrer_path, 'channel': channel, "
    "'utm_source': utm_source, 'utm_medium': utm_medium, 'utm_campaign': utm_campaign, "
    "'utm_content': utm_content, 'utm_term': utm_term}"
)


def base_sql(source: str) -> str:
    """Events of ``source`` with their visit: visit id, entry event, exit page, bounce, duration.

    Visits are split on gaps over 30 minutes within one (UTC day, day key);
    they never span days because the day key itself changes at midnight. A
    visit is identified by (day, day key, ``vno``).
    """
    # Most day keys' events span under 30 minutes: one visit (vno 0), found by one grouping. Only the
    # others go through the window functions, over a narrow projection (row id, day, key, time):
    # sorting the full-width rows made sessionization ~15x slower.
    return f"""
ev AS MATERIALIZED (SELECT *, CAST(ts AS DATE) AS day, row_number() OVER () AS rid FROM {source}),
span AS (
  SELECT day, day_key, max(ts) - min(ts) > INTERVAL {VISIT_GAP_SECONDS} SECONDS AS multi
  FROM ev GROUP BY day, day_key
),
n1 AS (
  SELECT rid, day, day_key, t,
         CASE WHEN lag(t) OVER w IS NULL OR t - lag(t) OVER w > {VISIT_GAP_SECONDS} THEN 1 ELSE 0 END AS brk
  FROM (SELECT rid, day, day_key, CAST(epoch(ts) AS BIGINT) AS t FROM ev SEMI JOIN (
          SELECT day, day_key FROM span WHERE multi) m USING (day, day_key))
  WINDOW w AS (PARTITION BY day, day_key ORDER BY t, rid)
),
n2 AS (SELECT rid, sum(brk) OVER (ORDER BY day, day_key, t, rid ROWS UNBOUNDED PRECEDING) AS vno FROM n1),
s2 AS (
  SELECT ev.* EXCLUDE (rid), coalesce(n2.vno, 0) AS vno FROM ev LEFT JOIN n2 USING (rid)
),
vis AS (
  SELECT day, day_key, vno,
    count(*) FILTER (WHERE name = 'pageview') AS v_pv,
    coalesce(sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement'), 0) AS v_eng,
    CAST(epoch(max(ts)) - epoch(min(ts)) AS BIGINT) AS v_dur,
    -- first pageview (else first event) / last pageview (else last event), each in one pass
    arg_min({_ENTRY}, (name <> 'pageview', ts)) AS entry,
    arg_max(path, (name = 'pageview', ts)) AS exit_page
  FROM s2 GROUP BY day, day_key, vno
),
rows AS (
  SELECT s2.*, vis.entry, vis.exit_page, vis.v_dur,
         (vis.v_pv = 1 AND vis.v_eng < {BOUNCE_ENGAGED_MS}) AS is_bounce
  FROM s2 JOIN vis USING (day, day_key, vno)
)"""


def filter_sql(filters: tuple[Filter, ...], params: dict[str, Any]) -> str:
    """The filters, combined with and, as one condition over sessionized rows."""
    return " AND ".join(filter_conditions(filters, params)) or "true"


def filter_conditions(filters: tuple[Filter, ...], params: dict[str, Any], *, events: bool = False) -> list[str]:
    """One condition per filter, over sessionized rows or with ``events`` over raw events (plus ``day``)."""
    clauses = []
    for i, f in enumerate(filters):
        dim = DIMENSIONS[f.dimension]
        expr = dim.event_sql if events else dim.sql
        key = f"e{i}" if events else f"f{i}"
        if f.op != "contains":
            params[key] = list(f.values)
        if f.op == "is":
            clauses.append(f"list_contains(${key}, {expr})")
        elif f.op == "is_not":
            clauses.append(f"NOT list_contains(${key}, {expr})")
        else:
            ors = []
            for j, value in enumerate(f.values):
                params[f"{key}_{j}"] = value
                ors.append(f"contains({expr}, ${key}_{j})")
            clauses.append("(" + (" OR ".join(ors) or "false") + ")")
    return clauses


def aggregate_sql(
    dimensions: tuple[str, ...], filters: tuple[Filter, ...], params: dict[str, Any], *, rows: str | None = None
) -> str:
    """One row per group: the dimension values d0..dn then the :class:`Components` columns.

    ``rows`` names a table already holding :func:`base_sql`'s rows (our own temp
    table); without it the raw files in ``$files`` are sessionized inline.
    """
    dcols = [f"d{i}" for i in range(len(dimensions))]
    dsel = "".join(f"{DIMENSIONS[d].sql} AS d{i}, " for i, d in enumerate(dimensions))
    dgroup = "".join(f"{c}, " for c in dcols)
    by = ", ".join(dcols)
    group_final = f"GROUP BY {by}" if dcols else ""
    join = " AND ".join(f"a.{c} IS NOT DISTINCT FROM s.{c}" for c in dcols) or "true"
    pick = "".join(f"coalesce(a.{c}, s.{c}) AS {c}, " for c in dcols)
    head = "WITH" if rows else "WITH " + base_sql(raw_source()) + ","
    relation = rows or "rows"
    return f"""{head}
g AS (SELECT {dsel}day, day_key, vno, ts, name, path, engaged_ms, scroll_depth, is_bounce, v_dur
      FROM {relation} WHERE {filter_sql(filters, params)}),
pv AS (
  SELECT {dgroup}day, day_key, vno,
    count(*) FILTER (WHERE name = 'pageview') AS n_pv,
    count(*) FILTER (WHERE name <> 'engagement') AS n_ev,
    sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS eng,
    bool_or(is_bounce) AS b, max(v_dur) AS dur
  FROM g GROUP BY {dgroup}day, day_key, vno
),
a AS (
  SELECT {dgroup}
    count(DISTINCT (day, day_key)) FILTER (WHERE n_ev > 0) AS visitors,
    count(*) FILTER (WHERE n_ev > 0) AS visits,
    sum(n_pv) AS pageviews, sum(n_ev) AS events,
    count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces,
    sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum,
    sum(eng) AS engaged_sum,
    count(DISTINCT (day, day_key)) FILTER (WHERE eng IS NOT NULL) AS engaged_n
  FROM pv {group_final}
),
s AS (
  SELECT {dgroup}sum(m) AS scroll_sum, count(*) AS scroll_n FROM (
    SELECT {dgroup}day, day_key, path, max(scroll_depth) AS m FROM g
    WHERE name = 'engagement' AND scroll_depth IS NOT NULL GROUP BY {dgroup}day, day_key, path
  ) {group_final}
)
SELECT {pick}a.visitors, a.visits, a.pageviews, a.events, a.bounces, a.duration_sum, a.engaged_sum, a.engaged_n,
       s.scroll_sum, s.scroll_n
FROM a FULL OUTER JOIN s ON {join}
"""


def raw_source() -> str:
    return "read_parquet($files)"


def prefiltered_source(filters: tuple[Filter, ...], params: dict[str, Any]) -> str:
    """The raw events of only those (day, day key)s that have an event matching every filter on its own.

    A visit can match a filter only if one of its events does by the
    dimension's ``event_sql`` (its entry or exit event, or the event itself),
    and a visit's sessionization depends on its own day key's events only:
    so sessionizing just these day keys, then applying the filters, gives
    exactly the rows a full scan would. A selective filter (a browser, a page,
    a source) leaves a fraction of the events to sessionize.
    """
    conds = filter_conditions(filters, params, events=True)
    return f"""(
  SELECT r.* FROM read_parquet($files) r
  SEMI JOIN (
    SELECT day, day_key FROM (SELECT *, CAST(ts AS DATE) AS day FROM read_parquet($files))
    GROUP BY day, day_key HAVING {" AND ".join(f"bool_or({c})" for c in conds)}
  ) k ON CAST(r.ts AS DATE) = k.day AND r.day_key = k.day_key
)"""


def rollup_sums_sql(dimensions: tuple[str, ...], params: dict[str, Any], *, source: str, ids: str) -> str:
    """Rollup rows of the sources in ``ids`` (our own parameter name) summed once for a whole page.

    Rows: (dimension, value, day, components): per value of each of
    ``dimensions`` (day NULL), and the totals (dimension ``''``) per day, from
    which totals and time:day/week/month are derived without another query.
    """
    params["sumdims"] = list(dimensions)
    sums = ", ".join(f"sum({c})" for c in COMPONENT_NAMES)
    return f"""SELECT dimension, value, CASE WHEN dimension = '' THEN day END AS d, {sums}
FROM {source}
WHERE list_contains(CAST({ids} AS INTEGER[]), src)
  AND (dimension = '' OR list_contains(CAST($sumdims AS VARCHAR[]), dimension))
GROUP BY dimension, value, d"""


def long_sums_sql(dimensions: tuple[str, ...], params: dict[str, Any], *, rows: str) -> str:
    """:func:`long_aggregate_sql` summed over days as :func:`rollup_sums_sql` (totals kept per day)."""
    inner = long_aggregate_sql(dimensions, params, rows=rows)
    sums = ", ".join(f"sum({c})" for c in COMPONENT_NAMES)
    return f"SELECT dimension, value, CASE WHEN dimension = '' THEN day END AS d, {sums} FROM ({inner}) GROUP BY ALL"


def long_aggregate_sql(dimensions: tuple[str, ...], params: dict[str, Any], *, rows: str) -> str:
    """Rollup-shaped rows (day, dimension, value, components) for many single dimensions in one pass.

    The day's totals are dimension ``''``. Three steps make it cheap (~5x
    faster than expanding every event once per dimension, same rows):

    * visit dimensions (constant within a visit) are expanded over one row
      per visit with partial components that add up again (sums, max, or);
      the event dimensions (page, name) over one row per (visit, value);
    * a visit row of a day key that has just that one row (one visit, its
      own columns unchanged throughout: the common case) already is that day
      key's whole contribution to its value, so it skips the two grouping
      steps (per visit, then per day key) the other rows go through.

    This is how rollups are built, on disk and in a querier's memory
    (:func:`aggregator.rollup.compute_rollup`).
    """
    event_dims = [d for d in dimensions if DIMENSIONS[d].per_event]
    visit_dims = [d for d in dimensions if not DIMENSIONS[d].per_event]
    params["vdims"] = ["", *visit_dims]
    vvalues = ", ".join(["''", *(f"CAST({DIMENSIONS[d].sql} AS VARCHAR)" for d in visit_dims)])
    own = ", ".join(OWN_COLUMNS)
    comps = ", ".join(COMPONENT_NAMES)
    key = "day, dimension, value"
    partial = f"""count(*) FILTER (WHERE name = 'pageview') AS n_pv,
    count(*) FILTER (WHERE name <> 'engagement') AS n_ev,
    sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS eng,
    bool_or(is_bounce) AS b, max(v_dur) AS dur"""
    scrolled = "name = 'engagement' AND scroll_depth IS NOT NULL"
    event_pv = event_s = ""
    for i, d in enumerate(event_dims):
        params[f"edim{i}"] = d
        expr = f"CAST({DIMENSIONS[d].sql} AS VARCHAR)"
        event_pv += f"""UNION ALL
  SELECT day, CAST($edim{i} AS VARCHAR), {expr}, day_key, vno, {partial}
  FROM {rows} GROUP BY day, day_key, vno, {expr}
  """
        event_s += f"""UNION ALL
  SELECT day, CAST($edim{i} AS VARCHAR), {expr}, day_key, path, max(scroll_depth)
  FROM {rows} WHERE {scrolled} GROUP BY day, day_key, path, {expr}
  """
    return f"""WITH
vp AS (
  -- per visit, and per the event's own columns (constant within a day key in practice, but grouped on
  -- so that a visit where one changes counts exactly as per event); n_rows: this day key's rows
  SELECT day, day_key, vno, {own}, any_value(entry) AS entry, any_value(exit_page) AS exit_page, {partial},
         count(*) OVER (PARTITION BY day, day_key) AS n_rows
  FROM {rows} GROUP BY day, day_key, vno, {own}
),
u AS (
  SELECT day, day_key, vno, n_rows, n_pv, n_ev, eng, b, dur,
         unnest($vdims) AS dimension, unnest([{vvalues}]) AS value
  FROM vp
),
pv AS (
  -- one row per (value, visit)
  SELECT {key}, day_key, vno, sum(n_pv) AS n_pv, sum(n_ev) AS n_ev, sum(eng) AS eng, bool_or(b) AS b,
         max(dur) AS dur
  FROM u WHERE n_rows > 1 GROUP BY {key}, day_key, vno
  {event_pv}
),
k AS (
  -- one row per (value, day key): exact distinct counts without count(DISTINCT)
  SELECT {key}, day_key,
    count(*) FILTER (WHERE n_ev > 0) AS visits,
    sum(n_pv) AS pageviews, sum(n_ev) AS events,
    count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces,
    sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum,
    sum(eng) AS engaged_sum,
    bool_or(eng IS NOT NULL) AS has_eng
  FROM pv GROUP BY {key}, day_key
  UNION ALL
  SELECT {key}, day_key,
    CAST(n_ev > 0 AS INTEGER), n_pv, n_ev, CAST(n_ev > 0 AND b AS INTEGER),
    CASE WHEN n_ev > 0 THEN dur END, eng, eng IS NOT NULL
  FROM u WHERE n_rows = 1
),
a AS (
  SELECT {key},
    count(*) FILTER (WHERE visits > 0) AS visitors,
    sum(visits) AS visits,
    sum(pageviews) AS pageviews, sum(events) AS events,
    sum(bounces) AS bounces,
    sum(duration_sum) AS duration_sum,
    sum(engaged_sum) AS engaged_sum,
    count(*) FILTER (WHERE has_eng) AS engaged_n
  FROM k GROUP BY {key}
),
sp AS (
  -- deepest scroll per (value, day key, page), the visit dimensions expanded over (visit, page) rows
  SELECT {key}, day_key, path, max(m) AS m FROM (
    SELECT day, day_key, path, m, unnest($vdims) AS dimension, unnest([{vvalues}]) AS value
    FROM (SELECT day, day_key, vno, path, {own}, any_value(entry) AS entry, any_value(exit_page) AS exit_page,
                 max(scroll_depth) AS m
          FROM {rows} WHERE {scrolled} GROUP BY day, day_key, vno, path, {own})
  ) GROUP BY {key}, day_key, path
  {event_s}
),
s AS (SELECT {key}, sum(m) AS scroll_sum, count(*) AS scroll_n FROM sp GROUP BY {key}),
j AS (
  SELECT coalesce(a.day, s.day) AS day, coalesce(a.dimension, s.dimension) AS dimension,
         coalesce(a.value, s.value) AS value, a.* EXCLUDE (day, dimension, value), s.scroll_sum, s.scroll_n
  FROM a FULL OUTER JOIN s ON a.day = s.day AND a.dimension = s.dimension AND a.value IS NOT DISTINCT FROM s.value
)
SELECT day, dimension, value, {comps} FROM j"""
