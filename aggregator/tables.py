"""The per-visit table, the hits table and their dictionary: what queries within raw retention read.

Built once per day from one sessionization of the day's events (with the day's
rollup, aggregator/rollup.py), or in memory for a day whose files are not
built yet (aggregator/daycache.py). Three relations, every dimension value in
them a small integer code into the day's dictionary, because grouping by
integers is several times faster than by text and one pass of a page groups
by twenty dimensions:

* **dict** — (day, dimension, code, value): each dimension's distinct values
  of the day (the text a query answers with), numbered from 0;
* **visits** — one row per visit and per combination of the events' own
  columns (a *part*: browser, OS, device, ISP, network domain are derived from
  the same IP and UA as the day key, so one part per visit in practice; a visit
  where one changes midway counts exactly as per event): the visit's codes
  ``c_<dimension>`` (entry page, exit page, acquisition, own columns), its
  counts (``n_pv`` pageviews, ``n_ev`` counted events, ``eng`` engaged ms),
  ``is_bounce``, ``v_dur``, first and last second, the visitor's ``profile``
  (see below) and two row counts that let queries count distinct visitors and
  visits without ``count(DISTINCT)`` in the common case: ``key_rows`` (rows of
  this day key) and ``visit_rows`` (parts of this visit);
* **hits** — the events of a visit part grouped by (page, event name, UTC
  hour): ``c_page``, ``c_name``, ``hour``, ``kind`` (0 pageview, 1 engagement,
  2 custom), the count ``n``, engaged ms, deepest scroll, first and last
  second — and the visit's columns copied onto every row (as Plausible copies
  session attributes onto events), so that any filter, on the visit or on the
  event, is a WHERE on one table.

A visitor's **profile** is a 64-bit hash of their device and network (browser
and OS with versions, device class, AS number, network domain), computed from
the stored values: it tells one person returning on other days from several
people (aggregator/kanon.py) and adds nothing the row does not already hold.

These are derived records (PRIVACY.md): no field beyond the inventory, kept
under the raw-event retention and purged with the events.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.dimensions import DIMENSIONS
from aggregator.sessions import OWN_COLUMNS
from collector.schema import MAX_ENGAGED_MS

#: Visit dimensions, coded in both tables; event dimensions, coded in the hits only.
VISIT_DIMENSIONS: tuple[str, ...] = tuple(
    d.name for d in DIMENSIONS.values() if d.name.startswith("visit:") and not d.internal
)
EVENT_DIMENSIONS: tuple[str, ...] = ("event:page", "event:name")

PROFILE_SQL = "hash(browser, browser_version, os, os_version, device, asn, network_domain)"
KIND_SQL = "CASE name WHEN 'pageview' THEN 0 WHEN 'engagement' THEN 1 ELSE 2 END"

#: The visit's columns every hits row carries (besides the codes).
VISIT_METRIC_COLUMNS = ("is_bounce", "v_dur", "v_start", "v_end", "key_rows", "visit_rows", "profile")


def code(dimension: str) -> str:
    """The code column of a dimension: ``visit:browser`` → ``c_browser``, ``event:page`` → ``c_page``."""
    return "c_" + dimension.split(":", 1)[1]


VISIT_CODES = tuple(code(d) for d in VISIT_DIMENSIONS)


@dataclass(frozen=True, slots=True)
class Tables:
    """Names of one built set (temp tables made up by the caller)."""

    dict: str
    visits: str
    hits: str


def build_sql(rows: str, prefix: str) -> list[str]:
    """Statements that build ``<prefix>_dict``, ``<prefix>_visits`` and ``<prefix>_hits`` from sessionized rows.

    ``rows`` is a relation of :func:`aggregator.sessions.sessionized_sql`'s shape; ``prefix`` an identifier
    made up by the caller. Intermediate tables ``<prefix>_vs`` and ``<prefix>_hs`` are dropped at the end.
    """
    own = ", ".join(OWN_COLUMNS)
    vdims = [DIMENSIONS[d] for d in VISIT_DIMENSIONS]
    values = ", ".join(f"CAST({d.sql} AS VARCHAR) AS s_{code(d.name)[2:]}" for d in vdims)
    visit_cols = "vno, v_entry, v_source, v_host, v_rpath, v_channel, v_utm_source, v_utm_medium, v_utm_campaign, "
    visit_cols += "v_utm_content, v_utm_term, v_exit, v_start, v_end, v_dur, is_bounce"
    vs = f"""CREATE TEMP TABLE {prefix}_vs AS
SELECT day, day_key, vno, {own}, {values}, any_value({PROFILE_SQL}) AS profile,
  count(*) FILTER (WHERE name = 'pageview') AS n_pv,
  count(*) FILTER (WHERE name <> 'engagement') AS n_ev,
  sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS eng,
  any_value(v_start) AS v_start, any_value(v_end) AS v_end, any_value(v_dur) AS v_dur,
  bool_or(is_bounce) AS is_bounce,
  count(*) OVER (PARTITION BY day, day_key) AS key_rows,
  count(*) OVER (PARTITION BY day, day_key, vno) AS visit_rows
FROM {rows}
GROUP BY day, day_key, {visit_cols}, {own}"""
    hs = f"""CREATE TEMP TABLE {prefix}_hs AS
SELECT day, day_key, vno, {own}, path, name, CAST(hour(ts) AS TINYINT) AS hour, CAST({KIND_SQL} AS TINYINT) AS kind,
  count(*) AS n, sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS eng,
  max(scroll_depth) FILTER (WHERE name = 'engagement') AS scroll, min(ts) AS first_ts, max(ts) AS last_ts
FROM {rows}
GROUP BY day, day_key, vno, {own}, path, name, hour(ts)"""
    parts = [
        f"SELECT DISTINCT day, '{d.name}' AS dimension, s_{code(d.name)[2:]} AS value FROM {prefix}_vs" for d in vdims
    ]
    parts += [
        f"SELECT DISTINCT day, 'event:page' AS dimension, path AS value FROM {prefix}_hs",
        f"SELECT DISTINCT day, 'event:name' AS dimension, name AS value FROM {prefix}_hs",
    ]
    numbered = "CAST(row_number() OVER (PARTITION BY day, dimension ORDER BY value) - 1 AS INTEGER)"
    dictionary = f"""CREATE TEMP TABLE {prefix}_dict AS
SELECT day, dimension, {numbered} AS code, value FROM ({" UNION ALL ".join(parts)})"""
    joins = " ".join(
        f"JOIN {prefix}_dict d{i} ON d{i}.day = v.day AND d{i}.dimension = '{d.name}' "
        f"AND d{i}.value = v.s_{code(d.name)[2:]}"
        for i, d in enumerate(vdims)
    )
    codes = ", ".join(f"d{i}.code AS {code(d.name)}" for i, d in enumerate(vdims))
    visits = f"""CREATE TEMP TABLE {prefix}_visits AS
SELECT v.day, v.day_key, v.vno, {codes}, v.n_pv, v.n_ev, v.eng, v.is_bounce, v.v_dur, v.v_start, v.v_end,
       v.key_rows, v.visit_rows, v.profile, {", ".join(f"v.{c}" for c in OWN_COLUMNS)}
FROM {prefix}_vs v {joins}"""
    own_match = " AND ".join(f"h.{c} IS NOT DISTINCT FROM v.{c}" for c in OWN_COLUMNS)
    carried = ", ".join(f"v.{c}" for c in (*VISIT_CODES, *VISIT_METRIC_COLUMNS))
    # First-of flags: for a day key with one visit row (key_rows = 1), whose rows a visit-level filter keeps or
    # drops together, its distinct visitors per page or name and its deepest scroll per page are plain sums.
    first = "row_number() OVER (PARTITION BY h.day, h.day_key, {by} ORDER BY h.first_ts, h.name, h.hour, h.path) = 1"
    hits = f"""CREATE TEMP TABLE {prefix}_hits AS
SELECT h.day, h.day_key, h.vno, dp.code AS c_page, dn.code AS c_name, h.hour, h.kind, h.n, h.eng, h.scroll,
       h.first_ts, h.last_ts,
       CASE WHEN h.kind <> 1 THEN {first.format(by="h.path, h.kind <> 1")} ELSE false END AS fp,
       CASE WHEN h.kind = 1 AND h.eng IS NOT NULL
            THEN {first.format(by="h.path, h.kind = 1 AND h.eng IS NOT NULL")} ELSE false END AS fpe,
       CASE WHEN h.kind = 1 AND {first.format(by="h.path, h.kind = 1")}
            THEN max(h.scroll) FILTER (WHERE h.kind = 1) OVER (PARTITION BY h.day, h.day_key, h.path) END AS pscroll,
       CASE WHEN h.kind <> 1 THEN {first.format(by="h.name, h.kind <> 1")} ELSE false END AS fn,
       {carried}
FROM {prefix}_hs h
JOIN {prefix}_visits v ON v.day = h.day AND v.day_key = h.day_key AND v.vno = h.vno AND {own_match}
JOIN {prefix}_dict dp ON dp.day = h.day AND dp.dimension = 'event:page' AND dp.value = h.path
JOIN {prefix}_dict dn ON dn.day = h.day AND dn.dimension = 'event:name' AND dn.value = h.name"""
    finish = f"ALTER TABLE {prefix}_visits DROP COLUMN {OWN_COLUMNS[0]}"
    drops = [f"ALTER TABLE {prefix}_visits DROP COLUMN {c}" for c in OWN_COLUMNS[1:]]
    return [vs, hs, dictionary, visits, hits, finish, *drops, f"DROP TABLE {prefix}_vs", f"DROP TABLE {prefix}_hs"]


def tables(prefix: str) -> Tables:
    return Tables(f"{prefix}_dict", f"{prefix}_visits", f"{prefix}_hits")
