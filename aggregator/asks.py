"""What a request groups by (:class:`Ask`), and one day's sources in the lake (:class:`DaySource`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from aggregator.daycache import MissingDay
from aggregator.dimensions import DIMENSIONS, ROLLUP_PAIRS
from aggregator.querybuild import Column, column

TIME_BY_DAY = ("time:day", "time:week", "time:month")


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request groups by: its column, and whether it is a time series bucketed from daily totals."""

    column: Column
    dimensions: tuple[str, ...]

    @property
    def time_bucket(self) -> str | None:
        return self.dimensions[0] if len(self.dimensions) == 1 and self.dimensions[0] in TIME_BY_DAY else None

    @property
    def rollup_name(self) -> str | None:
        """The rollup dimension holding this column ('' for totals and time buckets), None if none does."""
        if not self.dimensions or self.time_bucket:
            return ""
        if len(self.dimensions) == 1 and self.dimensions[0] in DIMENSIONS and DIMENSIONS[self.dimensions[0]].rollup:
            return self.dimensions[0]
        return ROLLUP_PAIRS.get(self.dimensions)


def ask(dimensions: tuple[str, ...], start: dt.date) -> Ask:
    return Ask(column(dimensions, start), dimensions)


@dataclass(slots=True)
class DaySource:
    day: dt.date
    files: list[Path]  # the day's raw event files now (empty: purged)
    rollup: Path | None  # the rollup that may answer it
    built_at: float | None  # set when that rollup is one batch behind (rollup_max_stale)
    tables: dict[str, Path] | None  # the per-visit tables built from exactly ``files``

    def missing(self, site: str) -> MissingDay:
        return MissingDay(site, self.day, tuple(str(f) for f in self.files))
