"""Small lakes with known traffic for in-process dashboards tests: spool segments, the real ingest, two users."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from aggregator.ingest import Ingester
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings as AggregatorSettings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from dashboards.store import Store
from dashboards.users import Users
from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, DEMO, VIEWER, VIEWER_PASSWORD

K = 5
RARE_BROWSER = "RareBrowser"  # K-1 people: a segment too small to show
START = dt.date(2026, 11, 8)
DAYS = 14
NOW = dt.datetime(2026, 11, 22, 12, 30, tzinfo=dt.UTC)  # the day after the traffic ends


def rare_events(template: Event, day: dt.date, n: int = K - 1) -> list[Event]:
    base = int(dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC).timestamp())
    return [
        dataclasses.replace(template, ts=base + i * 60, name="pageview", browser=RARE_BROWSER, day_key=(1 << 42) + i)
        for i in range(n)
    ]


def known_events() -> list[Event]:
    events = generate(Traffic(START, DAYS, {DEMO: 30}, seed=11))
    return events + rare_events(events[0], START + dt.timedelta(days=DAYS - 2))


def make_lake(data_dir: Path, events: list[Event]) -> Path:
    """The lake of ``events`` (through the real ingest and rollups), plus the admin and the viewer."""
    write_segments(events, data_dir / "spool" / "sealed", per_segment=5000)
    settings = AggregatorSettings(data_dir=data_dir, duckdb_threads=2)
    Ingester(settings).run_once()
    refresh_rollups(settings, NOW)  # as the nightly job leaves it: closed days rolled up
    users = Users(Store(data_dir / "dashboards.sqlite3"))
    users.add(ADMIN, ADMIN_PASSWORD, "admin")
    users.add(VIEWER, VIEWER_PASSWORD, "viewer")
    return data_dir
