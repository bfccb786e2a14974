from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.query import Querier, QueryRequest
from aggregator.retention import purge
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments

SITE = "www.onecloud.example"


@pytest.mark.slow
def test_purge_with_injected_clock(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", duckdb_threads=2)
    start = dt.date(2024, 1, 1)
    # One visitor-day every ~30 days over two and a half years, so both horizons cut through data.
    events = [e for d in range(0, 900, 61) for e in generate(Traffic(start + dt.timedelta(days=d), 1, {SITE: 6}, d))]
    write_segments(events, settings.sealed_dir)
    Ingester(settings).run_once()
    lake = Lake(settings.lake_dir)
    now = dt.datetime(2026, 6, 15, 3, 0, tzinfo=dt.UTC)
    before = Querier(settings).run(QueryRequest(SITE, ("visitors",), (dt.date(2024, 7, 1), dt.date(2026, 6, 14))), now)

    report = purge(settings, now)

    raw_cutoff = dt.date(2026, 6, 15) - dt.timedelta(days=90)
    agg_cutoff = dt.date(2024, 5, 15)
    assert (report.raw_cutoff, report.aggregate_cutoff) == (raw_cutoff, agg_cutoff)
    assert report.raw_days > 0 and report.rollup_days > 0
    assert lake.event_days(SITE) and min(lake.event_days(SITE)) >= raw_cutoff
    assert lake.rollup_days(SITE) and min(lake.rollup_days(SITE)) >= agg_cutoff
    # The per-visit table is raw data: purged with the events, built for the days that remain.
    visit_days = Lake.days_in(lake.site_dirs(lake.visits_dir)[0])
    assert report.visit_days > 0 and visit_days == lake.event_days(SITE)
    # Raw days past 90 days live on as aggregates: unfiltered totals are unchanged.
    after = Querier(settings).run(QueryRequest(SITE, ("visitors",), (dt.date(2024, 7, 1), dt.date(2026, 6, 14))), now)
    assert after.rows == before.rows and after.rollup_days > 0
    # Purging again the same day is a no-op; a day later, the next day goes.
    assert purge(settings, now).raw_days == 0
