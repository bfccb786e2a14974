"""Sessionization: raw events → events with their visit, and the per-visit table.

Visits are runs of one (UTC day, day key)'s events with no gap over 30
minutes; they never span days because the day key itself changes at midnight.
A visit is identified by (day, day key, ``vno``).

Both relations built here share their column names, so every dimension's SQL
(:mod:`aggregator.dimensions`) reads either one:

* **rows** — one row per raw event, plus its visit's columns: ``vno``, the
  entry event's acquisition (``v_entry`` path, ``v_source``, ``v_host``,
  ``v_rpath``, ``v_channel``, ``v_utm_*``), the exit page ``v_exit``, the
  visit's first and last second ``v_start`` / ``v_end``, its duration
  ``v_dur`` and bounce flag ``is_bounce``.
* **visits** — the per-visit table (PRIVACY.md "derived records"): one row per
  visit and per combination of the event's own columns (browser, OS, device,
  ISP, network domain: derived from the same IP and UA as the day key, so one
  combination per visit in practice; a visit where one changes midway gets
  one row, a *part*, per combination, so that it counts exactly as per event),
  with the part's counts (``n_pv`` pageviews, ``n_ev`` counted events,
  ``eng`` engaged milliseconds) and two row counts that let queries count
  distinct visitors and visits without ``count(DISTINCT)`` in the common case:
  ``key_rows`` (rows of this day key) and ``visit_rows`` (parts of this visit).
"""

from __future__ import annotations

from aggregator.metrics import BOUNCE_ENGAGED_MS, VISIT_GAP_SECONDS
from collector.schema import MAX_ENGAGED_MS

#: Event columns behind the visit dimensions that are not derived from the entry event or the exit page.
OWN_COLUMNS = ("browser", "browser_version", "os", "os_version", "device", "isp", "asn", "network_domain")

#: The visit's entry-event columns (the visit's acquisition), as (visit column, event column).
ENTRY_COLUMNS = (
    ("v_entry", "path"),
    ("v_source", "referrer_source"),
    ("v_host", "referrer_host"),
    ("v_rpath", "referrer_path"),
    ("v_channel", "channel"),
    ("v_utm_source", "utm_source"),
    ("v_utm_medium", "utm_medium"),
    ("v_utm_campaign", "utm_campaign"),
    ("v_utm_content", "utm_content"),
    ("v_utm_term", "utm_term"),
)

#: Columns of the visit (not of the event) that :func:`sessionized_sql` adds to every event.
VISIT_COLUMNS = (
    "vno",
    *(v for v, _ in ENTRY_COLUMNS),
    "v_exit",
    "v_start",
    "v_end",
    "v_dur",
    "is_bounce",
)

_ENTRY_STRUCT = "{" + ", ".join(f"'{v}': {e}" for v, e in ENTRY_COLUMNS) + "}"

#: A visitor's device and network as one value: the same person on several days keeps it, so counting
#: distinct profiles tells one person returning from several people (see aggregator/kanon.py).
PROFILE_SQL = "hash(browser, browser_version, os, os_version, device, asn, network_domain)"


def sessionized_sql(source: str) -> str:
    """CTEs ending in ``rows``: the events of ``source`` (a relation) with their visit's columns."""
    # Most day keys' events span under 30 minutes: one visit (vno 0), found by one grouping. Only the
    # others go through the window functions, over a narrow projection (row id, day, key, time):
    # sorting the full-width rows made sessionization ~15x slower.
    entry = ", ".join(f"e.{v} AS {v}" for v, _ in ENTRY_COLUMNS)
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
-- numbered per day: a day's visits are numbered the same whichever other days are sessionized with it
n2 AS (SELECT rid, sum(brk) OVER (PARTITION BY day ORDER BY day_key, t, rid ROWS UNBOUNDED PRECEDING) AS vno FROM n1),
s2 AS (
  SELECT ev.* EXCLUDE (rid), CAST(coalesce(n2.vno, 0) AS BIGINT) AS vno FROM ev LEFT JOIN n2 USING (rid)
),
vis AS (
  SELECT day, day_key, vno,
    count(*) FILTER (WHERE name = 'pageview') AS v_pv,
    coalesce(sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement'), 0) AS v_eng,
    min(ts) AS v_start, max(ts) AS v_end,
    -- first pageview (else first event) / last pageview (else last event), each in one pass; events of the
    -- same second are ordered by path, so that the choice never depends on the order files are read in
    arg_min({_ENTRY_STRUCT}, (name <> 'pageview', ts, path)) AS e,
    arg_max(path, (name = 'pageview', ts, path)) AS v_exit
  FROM s2 GROUP BY day, day_key, vno
),
rows AS (
  SELECT s2.*, {entry}, vis.v_exit, vis.v_start, vis.v_end,
         CAST(epoch(vis.v_end) - epoch(vis.v_start) AS BIGINT) AS v_dur,
         (vis.v_pv = 1 AND vis.v_eng < {BOUNCE_ENGAGED_MS}) AS is_bounce
  FROM s2 JOIN vis USING (day, day_key, vno)
)"""


def visits_sql(rows: str) -> str:
    """The per-visit table of the sessionized ``rows`` (a relation of :func:`sessionized_sql`'s shape)."""
    own = ", ".join(OWN_COLUMNS)
    visit = ", ".join(c for c in VISIT_COLUMNS if c != "vno")
    return f"""SELECT site, day, day_key, vno, {own}, {visit},
  count(*) FILTER (WHERE name = 'pageview') AS n_pv,
  count(*) FILTER (WHERE name <> 'engagement') AS n_ev,
  sum(least(engaged_ms, {MAX_ENGAGED_MS})) FILTER (WHERE name = 'engagement') AS eng,
  count(*) OVER (PARTITION BY day, day_key) AS key_rows,
  count(*) OVER (PARTITION BY day, day_key, vno) AS visit_rows
FROM {rows}
GROUP BY site, day, day_key, vno, {own}, {visit}"""
