"""Visitors right now: the realtime number of the dashboards, from the raw events of today (and yesterday).

Reads two columns of at most two days' files, so it stays cheap on a
dashboard that refreshes it often. Under K it says so instead of a number
(PRIVACY.md rule 5: a count over a few minutes is not a site's total).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from aggregator.lake import Lake
from aggregator.request import CurrentVisitors, QueryError


def current_visitors(
    lake: Lake, db: duckdb.DuckDBPyConnection, k: int, site: str, now: dt.datetime, minutes: int = 5
) -> CurrentVisitors:
    """Distinct visitors with an event in (now - minutes, now]; ``None`` for the count under ``k``."""
    if not site:
        raise QueryError("site_id is required")
    if not 1 <= minutes <= 60:
        raise QueryError("minutes must be 1..60")
    now = now.astimezone(dt.UTC)
    since = now - dt.timedelta(minutes=minutes)
    days = {since.date(), now.date(), now.date() - dt.timedelta(days=1)}
    count, newest = 0, None
    for attempt in range(4):
        files = [str(f) for day in sorted(days) for f in lake.event_files(site, day)]
        if not files:
            break
        cur = db.cursor()
        try:
            # Visitors are (UTC day, day key): a visitor active across midnight counts twice, as everywhere.
            row = cur.execute(
                "SELECT count(DISTINCT (CAST(ts AS DATE), day_key)) FILTER (WHERE ts > $since AND ts <= $now), "
                "max(ts) FILTER (WHERE ts <= $now) FROM read_parquet($files)",
                {"files": files, "since": since.replace(tzinfo=None), "now": now.replace(tzinfo=None)},
            ).fetchone()
        except duckdb.IOException:
            # A listed file was compacted or purged meanwhile: list again.
            if attempt == 3:
                raise
            continue
        finally:
            cur.close()
        if row is not None:
            count = int(row[0])
            # To the minute: on a quiet site the exact second would date one visitor's event.
            newest = row[1].replace(second=0, microsecond=0, tzinfo=dt.UTC) if row[1] is not None else None
        break
    return CurrentVisitors(site, minutes, now, count if count >= k else None, k, newest)
