"""The aggregator's settings: one frozen dataclass, read from ``ANALYTICS_*`` variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from onecloud_kit import retention
from onecloud_kit.settings import FromEnv, SettingsError, setting

if TYPE_CHECKING:
    from aggregator.objectstore import S3Config


@dataclass(frozen=True, slots=True)
class Settings(FromEnv):
    # Same variable as the collector's: on one machine both share ./var.
    data_dir: Path = setting(Path("var"), "Directory holding the spool (read) and the lake (written).")
    site_config: Path | None = setting(
        None,
        "The site configuration file (JSON, docs/goals.md) whose goals and funnels queries use; empty: `sites.json` in"
        " the data dir.",
    )
    # Declared once (onecloud_kit.retention): the collector's privacy page states the same variables.
    raw_retention_days: int = retention.raw_retention_days()
    aggregate_retention_months: int = retention.aggregate_retention_months()
    k_anonymity: int = setting(5, "Result rows describing fewer distinct visitors than this fold into `(other)`.")
    rollup_max_stale: float = setting(
        0.0,
        "Seconds a day's rollup may still answer the aggregator's own queries (nightly reports) after new events"
        " landed in that day (0: never, exact; the day is rolled up in memory instead). The dashboards' pages have"
        " their own, ANALYTICS_DASHBOARDS_ROLLUP_MAX_STALE; the Stats API and exports are always exact.",
    )
    prop_values_per_day: int = setting(
        100,
        "Most distinct values a custom property key keeps per site and day, `(other)` included: later values are "
        "stored as `(other)` at ingest.",
    )
    ingest_interval: float = setting(5.0, "Seconds between spool scans of `aggregator ingest --follow`.")
    ingest_batch_bytes: int = setting(
        512 * 1024 * 1024,
        "Most spool bytes ingested in one batch (one DuckDB pass, one manifest record); a backlog of 1M events "
        "ingests ~12% faster in 512 MiB batches than in 128 MiB ones, at ~0.6 GB peak RSS instead of ~0.3 GB.",
    )
    lake_url: str = setting(
        "", "Where the lake lives: empty for `<data_dir>/lake`, a local path, or `s3://bucket/prefix` (settings below)."
    )
    s3_endpoint: str = setting(
        "", "S3-compatible endpoint as `http(s)://host:port` (SeaweedFS, MinIO, Ceph…); empty: AWS by region."
    )
    s3_access_key: str = setting("", "S3 access key id for the lake and shipped spool segments.", secret=True)
    s3_secret_key: str = setting("", "S3 secret access key.", secret=True)
    s3_region: str = setting("us-east-1", "S3 region (signing); most self-hosted stores accept any.")
    s3_url_style: str = setting("path", "S3 addressing: `path` (bucket in the path, self-hosted stores) or `vhost`.")
    spool_url: str = setting(
        "", "Also ingest spool segments shipped by collectors to `s3://bucket/prefix` (empty: local spool only)."
    )
    duckdb_threads: int = setting(0, "DuckDB worker threads per connection (0: one per core).")
    duckdb_memory_limit: str = setting("1GB", "DuckDB memory limit per connection (spills to disk beyond it).")
    report_sites: tuple[str, ...] = setting(
        (), "Sites the nightly reports cover, comma-separated (empty: every site present in the lake)."
    )
    report_top_rows: int = setting(10, "Rows per breakdown table in the HTML report (the CSVs hold every row).")
    smtp_host: str = setting("", "SMTP server for the nightly report e-mail (empty: no e-mail is sent).")
    smtp_port: int = setting(587, "SMTP server port.")
    smtp_user: str = setting("", "SMTP login user (empty: no login).")
    smtp_password: str = setting("", "SMTP login password.", secret=True)
    smtp_starttls: bool = setting(True, "Upgrade the SMTP connection with STARTTLS before logging in and sending.")
    report_from: str = setting("analytics@localhost", "Sender address of the nightly report e-mail.")
    report_to: tuple[str, ...] = setting((), "Recipients of the nightly report e-mail, comma-separated.")
    #: The lake's root, built on first use (an S3 root opens a client and may create the bucket): once per instance.
    _lake_root: Path | None = field(default=None, init=False, repr=False, compare=False)

    def validate(self) -> None:
        # PRIVACY.md rule 6 (CNIL): aggregates are kept at most 25 months.
        retention.check_retention(self.raw_retention_days, self.aggregate_retention_months)
        if self.k_anonymity < 1:
            raise SettingsError("ANALYTICS_K_ANONYMITY: must be at least 1")
        if not 2 <= self.prop_values_per_day <= 100_000:
            raise SettingsError("ANALYTICS_PROP_VALUES_PER_DAY: must be between 2 and 100000")
        if self.ingest_interval <= 0:
            raise SettingsError("ANALYTICS_INGEST_INTERVAL: must be positive")
        for name, url in (("LAKE_URL", self.lake_url), ("SPOOL_URL", self.spool_url)):
            if "://" in url and not url.startswith("s3://"):
                raise SettingsError(f"ANALYTICS_{name}: only local paths and s3:// URLs are supported")
        if self.spool_url and not self.spool_url.startswith("s3://"):
            raise SettingsError("ANALYTICS_SPOOL_URL: must be an s3://bucket/prefix URL")
        if self.s3_url_style not in ("path", "vhost"):
            raise SettingsError("ANALYTICS_S3_URL_STYLE: must be `path` or `vhost`")
        if self.ingest_batch_bytes < 1:
            raise SettingsError("ANALYTICS_INGEST_BATCH_BYTES: must be positive")
        if self.report_top_rows < 1:
            raise SettingsError("ANALYTICS_REPORT_TOP_ROWS: must be at least 1")
        if not 1 <= self.smtp_port <= 65535:
            raise SettingsError("ANALYTICS_SMTP_PORT: must be a TCP port (1-65535)")
        if self.smtp_host and not self.report_to:
            raise SettingsError("ANALYTICS_REPORT_TO: set at least one recipient when ANALYTICS_SMTP_HOST is set")

    @property
    def site_config_path(self) -> Path:
        """The one site configuration (collector.siteconfig): the same file the collector and the dashboards read."""
        return self.site_config or self.data_dir / "sites.json"

    @property
    def sealed_dir(self) -> Path:
        """Sealed spool segments: complete, safe to read (``open/`` is never read)."""
        return self.data_dir / "spool" / "sealed"

    @property
    def lake_is_remote(self) -> bool:
        return self.lake_url.startswith("s3://")

    def s3(self) -> S3Config:
        from aggregator.objectstore import S3Config

        return S3Config(self.s3_endpoint, self.s3_access_key, self.s3_secret_key, self.s3_region, self.s3_url_style)

    @property
    def lake_dir(self) -> Path:
        """The lake's root: a local directory, or an ObjectPath (a Path whose I/O goes to S3).

        Built on the first access and kept: a property computes, it does not connect every time. Two threads
        racing on the first access each build one (both valid, one kept); the bucket check is idempotent.
        """
        if self._lake_root is None:
            object.__setattr__(self, "_lake_root", self._build_lake_root())
        assert self._lake_root is not None
        return self._lake_root

    def _build_lake_root(self) -> Path:
        local = self.data_dir / "lake"
        if self.lake_is_remote:
            from aggregator.objectstore import root_path

            # The local directory remains the work directory (lock, staging, manifest).
            return root_path(self.lake_url, self.s3().filesystem(), local)
        return Path(self.lake_url) if self.lake_url else local

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"
