"""Retention (PRIVACY.md rule 6): raw events and per-visit tables for N days, daily aggregates at most 25 months.

The daily drop counts (aggregator/drops.py) are aggregates too: they go with the rollups.

The clock is a parameter, so tests purge "in the future" instead of waiting.
Before raw days are deleted, any missing rollup of them is built: the
aggregates outlive the events they were computed from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from aggregator.dates import months_back
from aggregator.drops import drops_dir
from aggregator.lake import Lake, fsync_dir, rmtree
from aggregator.rollupbuild import refresh_rollups_locked
from aggregator.settings import Settings


@dataclass(slots=True)
class PurgeReport:
    raw_cutoff: dt.date
    aggregate_cutoff: dt.date
    raw_days: int = 0
    visit_days: int = 0
    rollup_days: int = 0
    drop_days: int = 0
    quarantine_files: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "raw_cutoff": self.raw_cutoff.isoformat(),
            "aggregate_cutoff": self.aggregate_cutoff.isoformat(),
            "raw_days_deleted": self.raw_days,
            "visit_days_deleted": self.visit_days,
            "rollup_days_deleted": self.rollup_days,
            "drop_count_days_deleted": self.drop_days,
            "quarantine_files_deleted": self.quarantine_files,
        }


def cutoffs(settings: Settings, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """Days before these dates are deleted (raw events, aggregates)."""
    today = now.astimezone(dt.UTC).date()
    return today - dt.timedelta(days=settings.raw_retention_days), months_back(
        today, settings.aggregate_retention_months
    )


def purge(settings: Settings, now: dt.datetime) -> PurgeReport:
    lake = Lake(settings.lake_dir)
    raw_cutoff, agg_cutoff = cutoffs(settings, now)
    report = PurgeReport(raw_cutoff, agg_cutoff)
    with lake.writer():
        refresh_rollups_locked(settings, lake, now)
        report.raw_days = _drop_days(lake, lake.events_dir, raw_cutoff)
        # The per-visit table is raw data (one row per visit, with its day key): it goes with the events.
        report.visit_days = _drop_days(lake, lake.visits_dir, raw_cutoff)
        report.rollup_days = _drop_days(lake, lake.rollups_dir, agg_cutoff)
        report.drop_days = _drop_days(lake, drops_dir(lake), agg_cutoff)
        # Rejected records are raw records too: same retention.
        horizon = now.timestamp() - settings.raw_retention_days * 86400
        if lake.quarantine_dir.is_dir():
            for path in lake.quarantine_dir.iterdir():
                if path.stat().st_mtime < horizon:
                    path.unlink()
                    report.quarantine_files += 1
    return report


def _drop_days(lake: Lake, base: Path, cutoff: dt.date) -> int:
    dropped = 0
    for site_path in lake.site_dirs(base):
        for day in Lake.days_in(site_path):
            if day < cutoff:
                rmtree(site_path / f"day={day.isoformat()}")  # local tree or S3 prefix
                dropped += 1
        fsync_dir(site_path)
        if not any(site_path.iterdir()):
            site_path.rmdir()
    return dropped
