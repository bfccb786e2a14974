"""The metric components of day rows, as SQL: what each metric is computed from, per kind of relation.

A column's day rows (aggregator/querybuild.py) carry *components* — visitors, visits, pageviews, events,
bounces, duration and engaged-time sums, scroll depth — from which every metric is computed
(aggregator/metrics.py). Here: which components each metric needs, and the grouped SQL that computes them
from a relation of the per-visit table's shape, of the hits' or of the pages' (aggregator/tables.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.conversions import GoalRows

if TYPE_CHECKING:
    from aggregator.querybuild import Column


def group_sql(col: Column) -> tuple[str, str]:
    """The column's group expressions as ``g0, g1, …`` (select list) and their names (group list)."""
    sel = "".join(f", {p.expr} AS g{i}" for i, p in enumerate(col.parts))
    names = "".join(f", g{i}" for i in range(len(col.parts)))
    return sel, names


COMPS = "visitors, visits, pageviews, events, bounces, duration_sum, engaged_sum, engaged_n"
_SUMS = ", ".join(f"sum({c}) AS {c}" for c in COMPS.split(", "))


#: The components each metric is computed from (a column asked only for visitors computes one aggregate).
METRIC_COMPONENTS: dict[str, frozenset[str]] = {
    "visitors": frozenset({"visitors"}),
    "visits": frozenset({"visits"}),
    "pageviews": frozenset({"pageviews"}),
    "events": frozenset({"events"}),
    "views_per_visit": frozenset({"pageviews", "visits"}),
    "bounce_rate": frozenset({"bounces", "visits"}),
    "visit_duration": frozenset({"duration_sum", "visits"}),
    "time_on_page": frozenset({"engaged_sum", "engaged_n"}),
    "scroll_depth": frozenset({"scroll"}),
    "conversion_rate": frozenset({"visitors"}),
    "group_conversion_rate": frozenset({"visitors"}),
    "percentage": frozenset({"visitors"}),
}
ALL_COMPONENTS = frozenset(COMPS.split(", ")) | {"scroll"}
_NO_SCROLL = "NULL::BIGINT AS scroll_sum, NULL::BIGINT AS scroll_n"


def components_of(metrics: tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The components ``metrics`` need (the visitors always: k-anonymity counts them)."""
    out = {"visitors"}
    for m in metrics:
        out |= METRIC_COMPONENTS.get(m, ALL_COMPONENTS)
    return frozenset(out)


def _pick(exprs: dict[str, str], needs: frozenset[str]) -> str:
    return ", ".join(f"{e} AS {c}" if c in needs else f"NULL::BIGINT AS {c}" for c, e in exprs.items())


#: Components from rows of day keys with one visit row: each row is one visit (of a visit or page column).
_ONE_VISIT_ROW = {
    "visitors": "count(*) FILTER (WHERE n_ev > 0)",
    "visits": "count(*) FILTER (WHERE n_ev > 0)",
    "pageviews": "sum(n_pv)",
    "events": "sum(n_ev)",
    "bounces": "count(*) FILTER (WHERE n_ev > 0 AND is_bounce)",
    "duration_sum": "sum(v_dur) FILTER (WHERE n_ev > 0)",
    "engaged_sum": "sum(eng)",
    "engaged_n": "count(eng)",
}
#: Components from rows grouped per (value, day key) first: the other day keys.
_PER_DAY_KEY = {
    "visitors": "count(*) FILTER (WHERE visits > 0)",
    "visits": "sum(visits)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "bounces": "sum(bounces)",
    "duration_sum": "sum(duration_sum)",
    "engaged_sum": "sum(engaged_sum)",
    "engaged_n": "count(*) FILTER (WHERE has_eng)",
}


def _member_visit_row(m0: str) -> dict[str, str]:
    """:data:`_ONE_VISIT_ROW` over only the rows where ``m0`` holds (a membership column of fused rows)."""
    return {
        "visitors": f"count(*) FILTER (WHERE {m0} AND n_ev > 0)",
        "visits": f"count(*) FILTER (WHERE {m0} AND n_ev > 0)",
        "pageviews": f"sum(n_pv) FILTER (WHERE {m0})",
        "events": f"sum(n_ev) FILTER (WHERE {m0})",
        "bounces": f"count(*) FILTER (WHERE {m0} AND n_ev > 0 AND is_bounce)",
        "duration_sum": f"sum(v_dur) FILTER (WHERE {m0} AND n_ev > 0)",
        "engaged_sum": f"sum(eng) FILTER (WHERE {m0})",
        "engaged_n": f"count(eng) FILTER (WHERE {m0})",
    }


def visit_sets(
    cols: list[Column], visits: str, needs: dict[str, frozenset[str]], prefix: str, *, others: int = 0
) -> tuple[list[str], dict[str, str]]:
    """Coded rows of many visit columns from one scan of ``visits`` (a relation the statement names).

    Every column is grouped at once with GROUPING SETS: one scan of the visits feeds every column's hash
    table, instead of one scan (or one materialized copy) per column. The rows of day keys with one visit row
    (``key_rows`` 1, most of them) are one visit and one visitor each; the others are grouped per (value,
    visit) first, then per (value, day key), each level one GROUPING SETS aggregate too. Columns are grouped
    by the components their requests need (a panel needs its visitors only, the totals everything): each
    group computes only those. Returns the CTEs (``name AS (…)``) and, per column name, its coded rows
    (day, g…, components).

    ``others`` > 0: ``visits`` are fused rows (aggregator/fused.py) with memberships ``m0`` (the scope) to
    ``m{others}`` (its neighbours): the components count the ``m0`` rows only, ``n0`` how many there are, and
    ``v0`` … ``v{others}`` are each scope's visitors, counted as the components count them.
    """
    fused = others > 0
    one = _member_visit_row("m0") if fused else _ONE_VISIT_ROW
    js = range(1, others + 1)
    # What the fused rows add at each level: the scope's rows, and each neighbour's counted day keys.
    one_x = ", count(*) FILTER (WHERE m0) AS n0" + "".join(
        f", count(*) FILTER (WHERE m{j} AND n_ev > 0) AS v{j}" for j in js
    )
    visit_x = ", count(*) FILTER (WHERE m0) AS n0" + "".join(f", bool_or(m{j} AND n_ev > 0) AS b{j}" for j in js)
    key_x = ", sum(n0) AS n0" + "".join(f", bool_or(b{j}) AS b{j}" for j in js)
    day_x = ", sum(n0) AS n0" + "".join(f", count(*) FILTER (WHERE b{j}) AS v{j}" for j in js)
    out_x = ", sum(n0) AS n0, sum(visitors) AS v0" + "".join(f", sum(v{j}) AS v{j}" for j in js)
    if not fused:
        one_x = visit_x = key_x = day_x = out_x = ""
    only = " FILTER (WHERE m0)" if fused else ""
    by_needs: dict[frozenset[str], list[Column]] = {}
    for col in cols:
        by_needs.setdefault(needs.get(col.name, ALL_COMPONENTS), []).append(col)
    ctes: list[str] = []
    out: dict[str, str] = {}
    for n, (need, group) in enumerate(by_needs.items()):
        exprs = list(dict.fromkeys(p.expr for col in group for p in col.parts))
        alias = {e: f"p{i}" for i, e in enumerate(exprs)}
        projected = "".join(f", {e} AS p{i}" for i, e in enumerate(exprs))
        ps = "".join(f", p{i}" for i in range(len(exprs)))
        sets = list(dict.fromkeys(tuple(sorted({alias[p.expr] for p in col.parts})) for col in group))
        # GROUPING(p0, …) has a bit set (p0 the highest) for each expression a row is not grouped by.
        gid = f"grouping({ps[2:]})" if exprs else "0"

        def grouping(*keys: str, sets: list[tuple[str, ...]] = sets) -> str:
            return ", ".join("(" + ", ".join((*keys, *s)) + ")" for s in sets)

        name = f"{prefix}{n}"
        ctes.append(f"""{name} AS MATERIALIZED (
      SELECT day{ps}, {gid} AS gid, {_pick(one, need)}{one_x}
      FROM (SELECT *{projected} FROM {visits} WHERE key_rows = 1) GROUP BY GROUPING SETS ({grouping("day")})
      UNION ALL
      SELECT day{ps}, gid, {_pick(_PER_DAY_KEY, need)}{day_x} FROM (
        SELECT day{ps}, gid, day_key, count(*) FILTER (WHERE n_ev > 0) AS visits, sum(n_pv) AS pageviews,
          sum(n_ev) AS events, count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces,
          sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum, sum(eng) AS engaged_sum,
          bool_or(eng IS NOT NULL) AS has_eng{key_x}
        FROM (
          SELECT day{ps}, {gid} AS gid, day_key, vno, sum(n_pv){only} AS n_pv, sum(n_ev){only} AS n_ev,
                 sum(eng){only} AS eng, bool_or(is_bounce){only} AS b, max(v_dur){only} AS dur{visit_x}
          FROM (SELECT *{projected} FROM {visits} WHERE key_rows > 1)
          GROUP BY GROUPING SETS ({grouping("day", "day_key", "vno")})
        ) GROUP BY day{ps}, gid, day_key
      ) GROUP BY day{ps}, gid)""")
        for col in group:
            mine = {alias[p.expr] for p in col.parts}
            mask = sum(1 << (len(exprs) - 1 - i) for i in range(len(exprs)) if f"p{i}" not in mine)
            _, names = group_sql(col)
            picked = "".join(f", {alias[p.expr]} AS g{i}" for i, p in enumerate(col.parts))
            extra = ", n0" + "".join(f", v{j}" for j in js) if fused else ""
            out[col.name] = f"""
    SELECT day{names}, {_SUMS}{out_x} FROM (
      SELECT day{picked}, {COMPS}{extra} FROM {name} WHERE gid = {mask}
    ) GROUP BY day{names}"""
    return ctes, out


def event_comps(col: Column, hits: str, *, light: bool) -> str:
    """Coded rows (day, g…, components) of an event column, from hits.

    ``light``: only what needs no visit (visitors, pageviews, events, engaged time), grouped per (value, day
    key) then per value; the others are NULL. Otherwise per (value, visit) first.
    """
    sel, names = group_sql(col)
    counts = """sum(n) FILTER (WHERE kind = 0) AS n_pv, coalesce(sum(n) FILTER (WHERE kind <> 1), 0) AS n_ev,
               sum(eng) FILTER (WHERE kind = 1) AS eng"""
    if light and isinstance(hits, GoalRows):
        # Merged rows are one per (visit part, goal): a day key with one visit row has one row per value of the
        # column, already what grouping it by day key gives; only the other day keys, and hits, are grouped.
        one = """CASE WHEN kind = 0 THEN n END AS n_pv, CASE WHEN kind <> 1 THEN n ELSE 0 END AS n_ev,
               CASE WHEN kind = 1 THEN eng END AS eng"""
        return f"""
    SELECT day{names}, count(*) FILTER (WHERE n_ev > 0) AS visitors, NULL::BIGINT AS visits, sum(n_pv) AS pageviews,
      sum(n_ev) AS events, NULL::BIGINT AS bounces, NULL::BIGINT AS duration_sum, sum(eng) AS engaged_sum,
      count(eng) AS engaged_n
    FROM (
      SELECT day{sel}, {one} FROM {hits} WHERE key_rows = 1 AND merged
      UNION ALL
      SELECT day{names}, {counts}
      FROM (SELECT *{sel} FROM {hits} WHERE key_rows > 1 OR NOT merged) GROUP BY day{names}, day_key
    ) GROUP BY day{names}"""
    if light:
        return f"""
    SELECT day{names}, count(*) FILTER (WHERE n_ev > 0) AS visitors, NULL::BIGINT AS visits, sum(n_pv) AS pageviews,
      sum(n_ev) AS events, NULL::BIGINT AS bounces, NULL::BIGINT AS duration_sum, sum(eng) AS engaged_sum,
      count(eng) AS engaged_n
    FROM (SELECT day{sel}, day_key, {counts} FROM {hits} GROUP BY day{names}, day_key) GROUP BY day{names}"""
    return f"""
    SELECT day{names}, count(*) FILTER (WHERE events > 0) AS visitors, sum(visits) AS visits,
      sum(pageviews) AS pageviews, sum(events) AS events, sum(bounces) AS bounces, sum(duration_sum) AS duration_sum,
      sum(engaged_sum) AS engaged_sum, count(*) FILTER (WHERE has_eng) AS engaged_n
    FROM (
      SELECT day{names}, day_key, count(*) FILTER (WHERE n_ev > 0) AS visits, sum(n_pv) AS pageviews,
        sum(n_ev) AS events, count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces,
        sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum, sum(eng) AS engaged_sum, bool_or(eng IS NOT NULL) AS has_eng
      FROM (
        SELECT day{sel}, day_key, vno, {counts}, bool_or(is_bounce) AS b, max(v_dur) AS dur
        FROM {hits} GROUP BY day{names}, day_key, vno
      ) GROUP BY day{names}, day_key
    ) GROUP BY day{names}"""


def page_comps(col: Column, pages: str, needs: frozenset[str] = ALL_COMPONENTS) -> str:
    """Coded rows (day, g, components with scroll) of the page column, from the pages table.

    A day key with one visit row (``key_rows`` 1) has one row per page: its distinct visitors, visits and
    deepest scroll per page are counts and sums of rows; other day keys are grouped per (page, visit),
    then per (page, day key). Components not in ``needs`` are NULL.
    """
    sel, names = group_sql(col)
    one = _pick(_ONE_VISIT_ROW, needs)
    scroll = "sum(scroll) AS scroll_sum, count(scroll) AS scroll_n" if "scroll" in needs else _NO_SCROLL
    per_key = _pick(_PER_DAY_KEY, needs)
    key_scroll = "sum(m) AS scroll_sum, count(m) AS scroll_n" if "scroll" in needs else _NO_SCROLL
    return f"""
    SELECT day{names}, {_SUMS}, sum(scroll_sum) AS scroll_sum, sum(scroll_n) AS scroll_n FROM (
      SELECT day{sel}, {one}, {scroll}
      FROM {pages} WHERE key_rows = 1 GROUP BY day{names}
      UNION ALL
      SELECT day{names}, {per_key}, {key_scroll}
      FROM (
        SELECT day{names}, day_key, count(*) FILTER (WHERE n_ev > 0) AS visits, sum(n_pv) AS pageviews,
          sum(n_ev) AS events, count(*) FILTER (WHERE n_ev > 0 AND b) AS bounces,
          sum(dur) FILTER (WHERE n_ev > 0) AS duration_sum, sum(eng) AS engaged_sum,
          bool_or(eng IS NOT NULL) AS has_eng, max(m) AS m
        FROM (
          SELECT day{sel}, day_key, vno, sum(n_pv) AS n_pv, sum(n_ev) AS n_ev, sum(eng) AS eng,
                 bool_or(is_bounce) AS b, max(v_dur) AS dur, max(scroll) AS m
          FROM {pages} WHERE key_rows > 1 GROUP BY day{names}, day_key, vno
        ) GROUP BY day{names}, day_key
      ) GROUP BY day{names}
    ) GROUP BY day{names}"""


def visit_scroll(col: Column, pages: str) -> str:
    """Coded rows (day, g…, scroll_sum, scroll_n) of a visit column, from the pages table."""
    sel, names = group_sql(col)
    return f"""
    SELECT day{names}, sum(s) AS scroll_sum, sum(c) AS scroll_n FROM (
      SELECT day{sel}, sum(scroll) AS s, count(scroll) AS c FROM {pages} WHERE key_rows = 1 GROUP BY day{names}
      UNION ALL
      SELECT day{names}, sum(m), count(m) FROM (
        SELECT day{sel}, day_key, c_page, max(scroll) AS m FROM {pages}
        WHERE key_rows > 1 AND scroll IS NOT NULL GROUP BY day{names}, day_key, c_page
      ) GROUP BY day{names}
    ) GROUP BY day{names}"""


def scroll_comps(col: Column, hits: str) -> str:
    """Coded rows (day, g…, scroll_sum, scroll_n): the deepest scroll per (visitor, page), summed per value."""
    sel, names = group_sql(col)
    return f"""
    SELECT day{names}, sum(m) AS scroll_sum, count(*) AS scroll_n FROM (
      SELECT day{sel}, day_key, c_page, max(scroll) AS m FROM {hits}
      WHERE kind = 1 AND scroll IS NOT NULL GROUP BY day{names}, day_key, c_page
    ) GROUP BY day{names}"""


#: Metrics whose components an event column gets without knowing the events' visits (no visit id needed).
LIGHT_METRICS = frozenset(
    {
        "visitors",
        "pageviews",
        "events",
        "time_on_page",
        "scroll_depth",
        "conversion_rate",
        "group_conversion_rate",
        "percentage",
    }
)
