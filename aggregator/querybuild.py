"""The one SQL builder: raw-event scans with sessionization, and rollup sums.

Identifiers and expressions come only from the fixed tables in
:mod:`aggregator.dimensions`; every user-supplied value (filter values, the
file lists of the days in range) is a bound, named parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.dimensions import DIMENSIONS, ROLLUP_TIME_SQL
from aggregator.metrics import BOUNCE_ENGAGED_MS, COMPONENT_NAMES, VISIT_GAP_SECONDS
from collector.schema import MAX_ENGAGED_MS


@dataclass(frozen=True, slots=True)
class Filter:
    op: str  # "is", "is_not", "contains"
    dimension: str
    values: tuple[str, ...]


FILTER_OPS = ("is", "is_not", "contains")

_ENTRY = (
    "{'path': path, 'source': referrer_source, 'host': referrer_host, 'rpath': referrer_path, 'channel': channel, "
    "'utm_source': utm_source, 'utm_medium': utm_medium, 'utm_campaign': utm_campaign, "
    "'utm_content': utm_content, 'utm_term': utm_term}"
)


def base_sql(source: str) -> str:
    """Events of ``source`` with their visit: visit number, entry event, exit page, bounce, duration.

    Visits are split on gaps over 30 minutes within one (UTC day, day key);
    they never span days because the day key itself changes at midnight.
    """
    return f"""
ev AS (SELECT *, CAST(ts AS DATE) AS day FROM {source}),
s1 AS (
  SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR epoch(ts) - epoch(lag(ts) OVER w) > {VISIT_GAP_SECONDS}
                 THEN 1 ELSE 0 END AS brk
  FROM ev WINDOW w AS (PARTITION BY day, day_key ORDER BY ts)
),
s2 AS (
  SELECT *, sum(brk) OVER (PARTITION BY day, day_key ORDER BY ts ROWS UNBOUNDED PRECEDING) AS vno FROM s1
),
vis AS (
  SELECT day, day_key, vno,
    count(*) FILTER (WHERE name = 'pageview') AS v_pv,
    coalesce(sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement'), 0) AS v_eng,
    CAST(epoch(max(ts)) - epoch(min(ts)) AS BIGINT) AS v_dur,
    coalesce(arg_min({_ENTRY}, ts) FILTER (WHERE name = 'pageview'), arg_min({_ENTRY}, ts)) AS entry,
    coalesce(arg_max(path, ts) FILTER (WHERE name = 'pageview'), arg_max(path, ts)) AS exit_page
  FROM s2 GROUP BY day, day_key, vno
),
rows AS (
  SELECT s2.*, vis.entry, vis.exit_page, vis.v_dur,
         (vis.v_pv = 1 AND vis.v_eng < {BOUNCE_ENGAGED_MS}) AS is_bounce
  FROM s2 JOIN vis USING (day, day_key, vno)
)"""


def filter_sql(filters: tuple[Filter, ...], params: dict[str, Any]) -> str:
    clauses = []
    for i, f in enumerate(filters):
        expr = DIMENSIONS[f.dimension].sql
        key = f"f{i}"
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
    return " AND ".join(clauses) or "true"


def aggregate_sql(
    source: str,
    dimensions: tuple[str, ...],
    filters: tuple[Filter, ...],
    params: dict[str, Any],
    *,
    with_base: bool = True,
) -> str:
    """One row per group: the dimension values d0..dn then the :class:`Components` columns."""
    dcols = [f"d{i}" for i in range(len(dimensions))]
    dsel = "".join(f"{DIMENSIONS[d].sql} AS d{i}, " for i, d in enumerate(dimensions))
    dgroup = "".join(f"{c}, " for c in dcols)
    by = ", ".join(dcols)
    group_final = f"GROUP BY {by}" if dcols else ""
    join = " AND ".join(f"a.{c} IS NOT DISTINCT FROM s.{c}" for c in dcols) or "true"
    pick = "".join(f"coalesce(a.{c}, s.{c}) AS {c}, " for c in dcols)
    head = ("WITH " + base_sql(source) + ",") if with_base else "WITH"
    return f"""{head}
g AS (SELECT {dsel}day, day_key, vno, ts, name, path, engaged_ms, scroll_depth, is_bounce, v_dur
      FROM rows WHERE {filter_sql(filters, params)}),
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


def rollup_sql(dimension: str | None, params: dict[str, Any]) -> str:
    """Sum rollup rows over the days of ``$rfiles``: per value of one dimension, or totals."""
    sums = ", ".join(f"sum({c})" for c in COMPONENT_NAMES)
    if dimension is None:
        return f"SELECT {sums} FROM read_parquet($rfiles) WHERE dimension = ''"
    if dimension in ROLLUP_TIME_SQL:
        expr = ROLLUP_TIME_SQL[dimension]
        return f"SELECT {expr} AS d0, {sums} FROM read_parquet($rfiles) WHERE dimension = '' GROUP BY d0"
    params["rdim"] = dimension
    return f"SELECT value AS d0, {sums} FROM read_parquet($rfiles) WHERE dimension = $rdim GROUP BY d0"
