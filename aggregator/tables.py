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
  hour, custom properties): ``c_page``, ``c_name``, ``hour``, ``kind`` (0 pageview, 1 engagement,
  2 custom), the count ``n``, engaged ms, deepest scroll, first and last
  second, and ``ts_more``: every second of the row's events when there are
  more than two (and they are not engagement), else NULL — so that a funnel
  finds the first event of a step at or after a moment exactly from the hits,
  without reading the raw events (two events are their first and last second) —
  and the visit's columns copied onto every row (as Plausible copies
  session attributes onto events), so that any filter, on the visit or on the
  event, is a WHERE on one table;
* **pages** — the same per (visit part, page) only: for a day key with one
  visit row a page has one row, so distinct visitors per page (and the deepest
  scroll per visitor and page) are plain counts and sums, the common panel of
  every dashboard page in one pass.

Codes are 64-bit hashes of the values (so building needs no join against the
dictionary; queries map them back per day and dimension). A visitor's
**profile** is a 64-bit hash of their device and network (browser
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

#: Visit dimensions, coded in both tables (event dimensions are coded in the hits only).
VISIT_DIMENSIONS: tuple[str, ...] = tuple(
    d.name for d in DIMENSIONS.values() if d.name.startswith("visit:") and not d.internal
)

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
    pages: str


def build_sql(rows: str, prefix: str, *, has_props: bool = True) -> list[str]:
    """Statements that build ``<prefix>_dict``, ``<prefix>_visits`` and ``<prefix>_hits`` from sessionized rows.

    ``rows`` is a relation of :func:`aggregator.sessions.sessionized_sql`'s shape; ``prefix`` an identifier
    made up by the caller. A value's code is its 64-bit hash: computed where the value is, with no join
    against the dictionary (a collision within one day and dimension fails the build: a dictionary's codes
    are unique, see :func:`check_sql`). Queries map codes back per (day, dimension), so files built by
    another version whose hash differs still answer correctly.
    """
    own = tuple(code(f"visit:{c}") for c in OWN_COLUMNS)
    vdims = [DIMENSIONS[d] for d in VISIT_DIMENSIONS]
    # Custom properties, by event: lakes from before them have no such column (an empty map stands in).
    props = "props" if has_props else "CAST(MAP {} AS MAP(VARCHAR, VARCHAR)) AS props"
    codes = ", ".join(f"hash(CAST({d.sql} AS VARCHAR)) AS {code(d.name)}" for d in vdims)
    ev = f"""CREATE TEMP TABLE {prefix}_ev AS
SELECT day, day_key, vno, ts, CAST({KIND_SQL} AS TINYINT) AS kind, engaged_ms, scroll_depth, is_bounce, v_dur,
       v_start, v_end, hash(path) AS c_page, hash(name) AS c_name, {codes}, {PROFILE_SQL} AS profile, {props}
FROM {rows}"""
    parts = [
        f"SELECT DISTINCT day, '{d.name}' AS dimension, CAST({d.sql} AS VARCHAR) AS value FROM {rows}" for d in vdims
    ]
    parts += [
        f"SELECT DISTINCT day, 'event:page' AS dimension, path AS value FROM {rows}",
        f"SELECT DISTINCT day, 'event:name' AS dimension, name AS value FROM {rows}",
    ]
    dictionary = f"""CREATE TEMP TABLE {prefix}_dict AS
SELECT day, dimension, hash(value) AS code, value FROM ({" UNION ALL ".join(parts)})"""
    part = ", ".join(own)
    visit_codes = [c for c in VISIT_CODES if c not in own]
    carried = ", ".join(f"any_value({c}) AS {c}" for c in visit_codes)
    visits = f"""CREATE TEMP TABLE {prefix}_visits AS
SELECT day, day_key, vno, {part}, {carried},
  count(*) FILTER (WHERE kind = 0) AS n_pv, count(*) FILTER (WHERE kind <> 1) AS n_ev,
  sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE kind = 1) AS eng,
  bool_or(is_bounce) AS is_bounce, any_value(v_dur) AS v_dur, any_value(v_start) AS v_start,
  any_value(v_end) AS v_end, any_value(profile) AS profile,
  count(*) OVER (PARTITION BY day, day_key) AS key_rows,
  count(*) OVER (PARTITION BY day, day_key, vno) AS visit_rows
FROM {prefix}_ev GROUP BY day, day_key, vno, {part}"""
    hs = f"""CREATE TEMP TABLE {prefix}_hs AS
SELECT day, day_key, vno, {part}, c_page, c_name, CAST(hour(ts) AS TINYINT) AS hour, kind, props,
  count(*) AS n, sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE kind = 1) AS eng,
  max(scroll_depth) FILTER (WHERE kind = 1) AS scroll, min(ts) AS first_ts, max(ts) AS last_ts,
  CASE WHEN count(*) > 2 AND kind <> 1 THEN list(ts ORDER BY ts) END AS ts_more
FROM {prefix}_ev GROUP BY day, day_key, vno, {part}, c_page, c_name, hour(ts), kind, props"""
    match = " AND ".join(f"v.{c} = h.{c}" for c in own)
    carried_all = ", ".join(f"v.{c}" for c in (*VISIT_CODES, *VISIT_METRIC_COLUMNS))
    hits = f"""CREATE TEMP TABLE {prefix}_hits AS
SELECT h.day, h.day_key, h.vno, h.c_page, h.c_name, h.hour, h.kind, h.props, h.n, h.eng, h.scroll, h.first_ts,
       h.last_ts, h.ts_more, {carried_all}
FROM {prefix}_hs h JOIN {prefix}_visits v ON v.day = h.day AND v.day_key = h.day_key AND v.vno = h.vno AND {match}"""
    # One row per (visit part, page): for a day key with one visit row (key_rows = 1) a page's row is its only
    # one, so its distinct visitors per page are a count of rows, its deepest scroll a value of the row.
    carried_pages = ", ".join(f"v.{c}" for c in (*VISIT_CODES, *VISIT_METRIC_COLUMNS) if c not in own)
    pages = f"""CREATE TEMP TABLE {prefix}_pages AS
SELECT p.*, {carried_pages} FROM (
  SELECT day, day_key, vno, {part}, c_page, sum(n) FILTER (WHERE kind = 0) AS n_pv,
         coalesce(sum(n) FILTER (WHERE kind <> 1), 0) AS n_ev, sum(eng) AS eng, max(scroll) AS scroll,
         min(first_ts) AS first_ts, max(last_ts) AS last_ts
  FROM {prefix}_hs GROUP BY day, day_key, vno, {part}, c_page
) p JOIN {prefix}_visits v ON v.day = p.day AND v.day_key = p.day_key AND v.vno = p.vno
  AND {" AND ".join(f"v.{c} = p.{c}" for c in own)}"""
    return [ev, dictionary, visits, hs, hits, pages, f"DROP TABLE {prefix}_ev", f"DROP TABLE {prefix}_hs"]


def check_sql(prefix: str) -> str:
    """A query that returns a row for every code standing for two values in one day and dimension (none)."""
    return f"SELECT day, dimension, code FROM {prefix}_dict GROUP BY ALL HAVING count(*) > 1 LIMIT 1"


def same_codes_sql(dictionary: str) -> str:
    """A query that returns a row if a page or event-name code of ``dictionary`` stands for two values on two
    of its days (none, unless days built with two hash functions or a 64-bit collision meet).

    When it returns none, such a code means one value over all the dictionary's days: a table of the codes that
    convert a goal can then be joined to hits by code alone (a few hundred rows), not by (day, code).
    """
    return (
        f"SELECT 1 FROM {dictionary} WHERE dimension IN ('event:page', 'event:name') "
        "GROUP BY dimension, code HAVING min(value) <> max(value) LIMIT 1"
    )


def tables(prefix: str) -> Tables:
    return Tables(f"{prefix}_dict", f"{prefix}_visits", f"{prefix}_hits", f"{prefix}_pages")
