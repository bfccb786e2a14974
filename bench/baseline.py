"""A Plausible-style baseline for filtered overviews: plain DuckDB queries over a per-visit table and the events.

This is the layout Plausible uses (a sessions table next to the events, one
query per panel, filters as WHERE clauses, event filters as "sessions with a
matching event"), run on the same lake as our query layer: the per-visit
files (``lake/visits``) are the sessions table, the raw events the events
table. The sessions table is built once per lake by :func:`prepare` (with the
aggregator's own sessionization, one plain row per visit with its values —
our lake's per-visit tables are coded, so they are not a fair stand-in), and
its build is not timed. No k-anonymity, no rollups, no caching: the figure our
query layer is compared with in bench/query_bench.py. Not product code (never imported by the
product); the SQL here has no user input.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb

VISIT_PANELS = {
    "visit:entry_page": "v_entry",
    "visit:exit_page": "v_exit",
    "visit:source": "coalesce(v_source, 'Direct / None')",
    "visit:referrer": "coalesce(v_host || coalesce(v_rpath, ''), 'Direct / None')",
    "visit:channel": "v_channel",
    "visit:utm_source": "v_utm_source",
    "visit:utm_medium": "v_utm_medium",
    "visit:utm_campaign": "v_utm_campaign",
    "visit:browser": "browser",
    "visit:os": "os",
    "visit:device": "device",
    "visit:isp": "isp",
}

#: Each benchmark filter as (condition over the sessions table, condition over events or None).
FILTERS = {
    "browser": ("browser = 'Chrome'", None),
    "page": (None, "contains(path, '/p/1')"),
    "two": ("browser = 'Chrome' AND os = 'Windows'", None),
    "or": ("browser = 'Chrome' OR os = 'iOS'", None),
}


#: Bumped when the sessions table's shape changes, so that an old one is rebuilt.
SESSIONS_FORMAT = "2"
#: The events as Plausible stores them: each with its session (here: day, day key and visit number).
_EVENTS_WITH_SESSION = "SELECT day, day_key, vno, ts, name, path FROM rows"


def prepare(data_dir: Path) -> float:
    """Builds the plain sessions table (one Parquet file per day) if missing; returns the seconds it took."""
    from aggregator.sessions import sessionized_sql, visits_sql

    root = data_dir / "baseline"
    marker = root / f"sessions-v{SESSIONS_FORMAT}.done"
    if marker.exists():
        return 0.0
    t0 = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": "1500MB"})
    for d in sorted((data_dir / "lake" / "events").glob("site=*/day=*")):
        src = f"(SELECT * FROM read_parquet({str(d / '*.parquet')!r}))"
        for kind, select in (("sessions", visits_sql("rows")), ("events", _EVENTS_WITH_SESSION)):
            out = root / kind / d.parent.name / d.name
            out.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY (WITH {sessionized_sql(src)} {select}) TO '{out / 's.parquet'}' (FORMAT parquet)")
    con.close()
    marker.touch()
    return time.perf_counter() - t0


def files(data_dir: Path, kind: str, start: dt.date, end: dt.date) -> list[str]:
    out = []
    base = data_dir / "baseline" if kind in ("sessions", "session_events") else data_dir / "lake"
    kind = "events" if kind == "session_events" else kind
    for d in sorted((base / kind).glob("site=*/day=*")):
        day = dt.date.fromisoformat(d.name.removeprefix("day="))
        if start <= day <= end:
            out += sorted(str(p) for p in d.glob("*.parquet"))
    return out


def overview(con: duckdb.DuckDBPyConnection, data_dir: Path, mode: str, start: dt.date, end: dt.date) -> None:
    """KPIs + daily series + one top-10 query per panel + pages (with time on page), Plausible's way."""
    visit_cond, event_cond = FILTERS[mode]
    v_files, e_files = files(data_dir, "sessions", start, end), files(data_dir, "events", start, end)
    con.execute(f"CREATE OR REPLACE TEMP VIEW s AS SELECT * FROM read_parquet({v_files!r})")
    con.execute(f"CREATE OR REPLACE TEMP VIEW e AS SELECT *, CAST(ts AS DATE) AS day FROM read_parquet({e_files!r})")
    if event_cond:  # sessions with a matching event
        sessions = f"""(SELECT s.* FROM s SEMI JOIN (SELECT day, day_key, ts FROM e WHERE {event_cond}) m
                       ON s.day = m.day AND s.day_key = m.day_key AND m.ts BETWEEN s.v_start AND s.v_end)"""
        events = f"(SELECT * FROM e WHERE {event_cond})"
    else:
        sessions = f"(SELECT * FROM s WHERE {visit_cond})"
        events = f"""(SELECT e.* FROM e SEMI JOIN {sessions} f
                     ON e.day = f.day AND e.day_key = f.day_key AND e.ts BETWEEN f.v_start AND f.v_end)"""
    queries = [
        f"""SELECT count(DISTINCT (day, day_key)), count(*), sum(n_pv), round(avg(is_bounce::INT) * 100),
                   round(avg(v_dur)) FROM {sessions}""",
        f"SELECT day, count(DISTINCT day_key), sum(n_pv) FROM {sessions} GROUP BY day ORDER BY day",
        *(
            f"SELECT {e} AS v, count(DISTINCT (day, day_key)) AS n FROM {sessions} GROUP BY v ORDER BY n DESC LIMIT 10"
            for e in VISIT_PANELS.values()
        ),
        f"""SELECT path, count(DISTINCT (day, day_key)) AS n FROM {events} WHERE name = 'pageview'
            GROUP BY path ORDER BY n DESC LIMIT 10""",
        f"""SELECT path, count(DISTINCT (day, day_key)) AS n, sum(engaged_ms) / count(DISTINCT (day, day_key)),
                   avg(scroll_depth) FROM {events} GROUP BY path ORDER BY n DESC LIMIT 10""",
    ]
    for q in queries:
        con.execute(q).fetchall()


def goals(
    con: duckdb.DuckDBPyConnection, data_dir: Path, goal_list: list[dict[str, str]], start: dt.date, end: dt.date
) -> None:
    """A Goals panel Plausible's way: per goal, unique converting visitors and conversions, and the total visitors.

    Each goal is a condition over the events (a page pattern as LIKE, or an event name), all in one pass.
    """  # fmt: skip
    e_files = files(data_dir, "session_events", start, end)
    con.execute(f"CREATE OR REPLACE TEMP VIEW ge AS SELECT * FROM read_parquet({e_files!r})")
    conds = [_goal_sql(g) for g in goal_list]
    cols = ", ".join(f"count(DISTINCT (day, day_key)) FILTER (WHERE {c}), count(*) FILTER (WHERE {c})" for c in conds)
    con.execute(f"SELECT count(DISTINCT (day, day_key)), {cols} FROM ge").fetchall()


def funnel(
    con: duckdb.DuckDBPyConnection, data_dir: Path, steps: list[dict[str, str]], start: dt.date, end: dt.date
) -> None:
    """A funnel Plausible's way (its windowFunnel, in plain SQL): per visit, each step's first time after the
    step before's, then visitors per step."""  # fmt: skip
    e_files = files(data_dir, "session_events", start, end)
    con.execute(f"CREATE OR REPLACE TEMP VIEW fe AS SELECT * FROM read_parquet({e_files!r})")
    ctes = [f"s1 AS (SELECT day, day_key, vno, min(ts) AS t FROM fe WHERE {_goal_sql(steps[0])} GROUP BY ALL)"]
    for i, step in enumerate(steps[1:], start=2):
        ctes.append(
            f"s{i} AS (SELECT e.day, e.day_key, e.vno, min(e.ts) AS t FROM fe e JOIN s{i - 1} p "
            f"ON e.day = p.day AND e.day_key = p.day_key AND e.vno = p.vno AND e.ts > p.t "
            f"WHERE {_goal_sql(step)} GROUP BY ALL)"
        )
    counts = ", ".join(f"(SELECT count(DISTINCT (day, day_key)) FROM s{i})" for i in range(1, len(steps) + 1))
    con.execute(f"WITH {', '.join(ctes)} SELECT {counts}").fetchall()


def _goal_sql(goal: dict[str, str]) -> str:
    if "page" in goal:
        return f"name = 'pageview' AND path LIKE '{goal['page'].replace('*', '%')}'"
    return f"name = '{goal['event']}'"
