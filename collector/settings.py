"""The collector's settings: one frozen dataclass, read from ``ANALYTICS_*`` variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from collector.siteconfig import DEFAULT_CUSTOM_EVENTS, DEMO_SITE
from onecloud_kit import retention
from onecloud_kit.settings import FromEnv, SettingsError, check_cidrs, setting

#: Where day salts live; the code that opens the store (collector/app.py) and the settings share it.
SaltStoreKind = Literal["file", "postgres"]
SALT_STORE_KINDS: tuple[SaltStoreKind, ...] = get_args(SaltStoreKind)


@dataclass(frozen=True, slots=True)
class Settings(FromEnv):
    data_dir: Path = setting(Path("var"), "Directory for the spool, salts and caches (created if missing).")
    site_config: Path | None = setting(
        None,
        "The site configuration file (JSON, docs/goals.md): sites, custom events, property keys, goals, funnels;"
        " re-read when it changes. Empty: `sites.json` in the data dir.",
    )
    site_config_interval: float = setting(5.0, "Seconds between checks of the site configuration file for changes.")
    sites: tuple[str, ...] = setting(
        (DEMO_SITE,),
        "Legacy, for a first start only: when there is no site configuration file yet, it is written with these"
        " site domains (comma-separated). Afterwards the file decides.",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (), "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed (default: none)."
    )
    # The aggregator's variables (onecloud_kit.retention): the privacy page states what the purge does.
    raw_retention_days: int = retention.raw_retention_days()
    aggregate_retention_months: int = retention.aggregate_retention_months()
    isp_db: Path | None = setting(
        None, "Path to a MaxMind-format ASN/ISP database (GeoLite2-ASN, GeoIP2-ISP, DB-IP ASN); empty: bundled."
    )
    respect_dnt: bool = setting(False, "Also treat `DNT: 1` as an opt-out (`Sec-GPC: 1` always is).")
    allow_headless: bool = setting(False, "Count headless browsers as visitors (for the project's own browser tests).")
    datacenter_traffic: str = setting(
        "suspicious",
        "Events from hosting/cloud networks: `suspicious` drops those whose UA claims Chrome, Edge or Opera but "
        "that sent no client hints (scripts do not; browsers on HTTPS do), `drop` drops all (VPN users too), "
        "`keep` keeps all.",
    )
    allow_localhost: bool = setting(False, "Let the beacon report pages served from localhost or file: URLs.")
    network_domain: bool = setting(
        False, "Resolve each visitor's reverse DNS and keep the registrable domain (sends the address to the resolver)."
    )
    dns_server: str = setting(
        "", "Resolver for the network domain as host or host:port (empty: the system resolver from /etc/resolv.conf)."
    )
    dns_timeout_ms: int = setting(300, "Longest a request waits for the reverse DNS answer; no answer stores nothing.")
    dns_cache_size: int = setting(10000, "Reverse DNS answers kept in memory per worker (never written anywhere).")
    custom_events: tuple[str, ...] = setting(
        DEFAULT_CUSTOM_EVENTS,
        "Legacy, for a first start only: the custom event names (comma-separated) every site of"
        " ANALYTICS_SITES accepts in the site configuration file written then.",
    )
    max_body_bytes: int = setting(8192, "Largest accepted request body; larger bodies get 413 without being read.")
    spool_segment_seconds: float = setting(10.0, "Seal the open spool segment after this many seconds.")
    spool_segment_bytes: int = setting(16 * 1024 * 1024, "Seal the open spool segment once it reaches this size.")
    spool_batch_events: int = setting(2048, "Most events written by one group commit (one fsync).")
    ua_cache_size: int = setting(20000, "Parsed user-agent results kept in memory per worker.")
    ua_cache_bytes: int = setting(
        16 * 1024 * 1024, "Most memory the user-agent cache may hold per worker (keys cut to 512 characters first)."
    )
    page_cache_bytes: int = setting(
        8 * 1024 * 1024,
        "Most memory the parsed-page cache, and the parsed-referrer cache, may each hold per worker.",
    )
    salt_store: SaltStoreKind = setting(
        "file", "Where day salts live: `file` (data_dir/salts, one host) or `postgres` (shared by many hosts)."
    )
    salt_dsn: str = setting(
        "",
        "PostgreSQL DSN of the salt store (`postgres` only); a role only collectors have, never the aggregator.",
        secret=True,
    )
    spool_ship_url: str = setting(
        "", "Ship sealed spool segments to `s3://bucket/prefix` for an aggregator with no shared disk (empty: off)."
    )
    s3_endpoint: str = setting("", "S3-compatible endpoint as `http(s)://host:port` for shipped segments.")
    s3_access_key: str = setting("", "S3 access key id for shipped segments.", secret=True)
    s3_secret_key: str = setting("", "S3 secret access key for shipped segments.", secret=True)
    s3_region: str = setting("us-east-1", "S3 region (signing); most self-hosted stores accept any.")
    s3_url_style: str = setting("path", "S3 addressing: `path` (self-hosted stores) or `vhost`.")
    host: str = setting("127.0.0.1", "Address `collector serve` listens on.")
    port: int = setting(8000, "Port `collector serve` listens on.")
    workers: int = setting(1, "Worker processes for `collector serve`.")
    log_level: str = setting("info", "Log level: debug, info, warning, error.")
    max_header_bytes: int = setting(
        16384, "Largest request line + headers `collector serve` reads; a larger head gets 431 and is not read on."
    )
    header_timeout: float = setting(
        10.0, "Seconds a client has to send a whole request head (from connecting or the previous response)."
    )
    body_timeout: float = setting(10.0, "Seconds a client has to send the request body once its head arrived.")
    max_connections: int = setting(
        1000,
        "Open connections per worker (lowered to fit the descriptor limit); past it the longest-waiting client "
        "connection is closed.",
    )

    def validate(self) -> None:
        check_cidrs("ANALYTICS_TRUSTED_PROXIES", self.trusted_proxies)
        retention.check_retention(self.raw_retention_days, self.aggregate_retention_months)
        if not 0.1 <= self.site_config_interval <= 3600:
            raise SettingsError("ANALYTICS_SITE_CONFIG_INTERVAL: must be between 0.1 and 3600 seconds")
        if self.max_body_bytes < 256:
            raise SettingsError("ANALYTICS_MAX_BODY_BYTES: must be at least 256")
        if self.isp_db is not None and not self.isp_db.is_file():
            raise SettingsError(f"ANALYTICS_ISP_DB: no file at {self.isp_db}")
        if not 10 <= self.dns_timeout_ms <= 5000:
            raise SettingsError("ANALYTICS_DNS_TIMEOUT_MS: must be between 10 and 5000")
        if self.datacenter_traffic not in ("suspicious", "drop", "keep"):
            raise SettingsError("ANALYTICS_DATACENTER_TRAFFIC: must be `suspicious`, `drop` or `keep`")
        if self.ua_cache_bytes < 0:
            raise SettingsError("ANALYTICS_UA_CACHE_BYTES: must not be negative")
        if self.page_cache_bytes < 0:
            raise SettingsError("ANALYTICS_PAGE_CACHE_BYTES: must not be negative")
        if self.max_header_bytes < 1024:
            raise SettingsError("ANALYTICS_MAX_HEADER_BYTES: must be at least 1024")
        for name, seconds in (("HEADER_TIMEOUT", self.header_timeout), ("BODY_TIMEOUT", self.body_timeout)):
            if not 0.1 <= seconds <= 3600:
                raise SettingsError(f"ANALYTICS_{name}: must be between 0.1 and 3600 seconds")
        if self.max_connections < 16:
            raise SettingsError("ANALYTICS_MAX_CONNECTIONS: must be at least 16")
        if self.dns_cache_size < 0:
            raise SettingsError("ANALYTICS_DNS_CACHE_SIZE: must not be negative")
        if self.salt_store not in SALT_STORE_KINDS:
            raise SettingsError("ANALYTICS_SALT_STORE: must be `file` or `postgres`")
        if self.salt_store == "postgres" and not self.salt_dsn:
            raise SettingsError("ANALYTICS_SALT_DSN: needed when ANALYTICS_SALT_STORE=postgres")
        if self.spool_ship_url and not self.spool_ship_url.startswith("s3://"):
            raise SettingsError("ANALYTICS_SPOOL_SHIP_URL: must be an s3://bucket/prefix URL")
        if self.dns_server:
            from collector.rdns import parse_server

            try:
                parse_server(self.dns_server)
            except ValueError as exc:
                raise SettingsError(f"ANALYTICS_DNS_SERVER: {exc}") from None

    @property
    def site_config_path(self) -> Path:
        return self.site_config or self.data_dir / "sites.json"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def salt_dir(self) -> Path:
        return self.data_dir / "salts"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"
