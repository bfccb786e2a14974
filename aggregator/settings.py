"""The aggregator's settings: one frozen dataclass, read from ``ANALYTICS_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collector.config import SettingsError, from_env, setting


@dataclass(frozen=True, slots=True)
class Settings:
    # Same variable as the collector's: on one machine both share ./var.
    data_dir: Path = setting(Path("var"), "Directory holding the spool (read) and the lake (written).")
    raw_retention_days: int = setting(90, "Days de-identified events are kept in the lake before the purge.")
    aggregate_retention_months: int = setting(25, "Months daily aggregates (rollups) are kept before the purge.")
    k_anonymity: int = setting(5, "Result rows describing fewer distinct visitors than this fold into `(other)`.")
    ingest_interval: float = setting(5.0, "Seconds between spool scans of `aggregator ingest --follow`.")
    ingest_batch_bytes: int = setting(
        128 * 1024 * 1024, "Most spool bytes ingested in one batch (one DuckDB pass, one manifest record)."
    )
    duckdb_threads: int = setting(0, "DuckDB worker threads per connection (0: one per core).")
    duckdb_memory_limit: str = setting("1GB", "DuckDB memory limit per connection (spills to disk beyond it).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = from_env(cls, env)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.raw_retention_days < 1:
            raise SettingsError("ANALYTICS_RAW_RETENTION_DAYS: must be at least 1")
        if not 1 <= self.aggregate_retention_months <= 25:
            # PRIVACY.md rule 6 (CNIL): aggregates are kept at most 25 months.
            raise SettingsError("ANALYTICS_AGGREGATE_RETENTION_MONTHS: must be between 1 and 25")
        if self.k_anonymity < 1:
            raise SettingsError("ANALYTICS_K_ANONYMITY: must be at least 1")
        if self.ingest_interval <= 0:
            raise SettingsError("ANALYTICS_INGEST_INTERVAL: must be positive")
        if self.ingest_batch_bytes < 1:
            raise SettingsError("ANALYTICS_INGEST_BATCH_BYTES: must be positive")

    @property
    def sealed_dir(self) -> Path:
        """Sealed spool segments: complete, safe to read (``open/`` is never read)."""
        return self.data_dir / "spool" / "sealed"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"
