"""How long data is kept (PRIVACY.md rule 6): declared once, for the two packages that need it.

The aggregator purges by these settings; the collector's public privacy page
states them. Both read the same ``ANALYTICS_*`` variables, so one environment
file gives one answer, and the page cannot promise what the purge does not do.
"""

from __future__ import annotations

from typing import Any

from onecloud_kit.settings import SettingsError, setting

#: CNIL's ceiling for audience-measurement aggregates kept without consent.
MAX_AGGREGATE_MONTHS = 25


def raw_retention_days() -> Any:
    return setting(90, "Days de-identified events are kept in the lake before the purge (stated on `/privacy`).")


def aggregate_retention_months() -> Any:
    return setting(
        MAX_AGGREGATE_MONTHS,
        f"Months daily aggregates (rollups) are kept before the purge, at most {MAX_AGGREGATE_MONTHS} (stated on"
        " `/privacy`).",
    )


def check_retention(days: int, months: int) -> None:
    if days < 1:
        raise SettingsError("ANALYTICS_RAW_RETENTION_DAYS: must be at least 1")
    if not 1 <= months <= MAX_AGGREGATE_MONTHS:
        raise SettingsError(f"ANALYTICS_AGGREGATE_RETENTION_MONTHS: must be between 1 and {MAX_AGGREGATE_MONTHS}")
