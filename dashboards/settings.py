"""The dashboards' settings: one frozen dataclass, read from ``ANALYTICS_*`` variables.

Declared with the project's one settings convention (:mod:`onecloud_kit.settings`,
the only collector module the dashboards may import), so ``make docs`` renders
it like the others.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from onecloud_kit.settings import FromEnv, SettingsError, check_cidrs, setting

__all__ = ["Settings", "SettingsError"]

# 1/0 as before (and the boolean spellings the settings loader accepts), plus the new default.
SECURE_COOKIE_VALUES: dict[str, Literal["auto", "always", "never"]] = {
    "auto": "auto",
    **dict.fromkeys(("1", "true", "yes", "on"), "always"),
    **dict.fromkeys(("0", "false", "no", "off"), "never"),
}


@dataclass(frozen=True, slots=True)
class Settings(FromEnv):
    # Same variable as the collector's and aggregator's: on one machine all share ./var.
    data_dir: Path = setting(
        Path("var"), "Directory holding the lake (read) and dashboards.sqlite3 (users, keys, audit)."
    )
    site_config: Path | None = setting(
        None,
        "The site configuration file (JSON, docs/goals.md) the dashboards show and admins edit; empty: `sites.json`"
        " in the data dir.",
    )
    site_config_readonly: bool = setting(
        False,
        "Show the site configuration without offering to edit it: for hosts where configuration management owns"
        " the file.",
    )
    sites: tuple[str, ...] = setting(
        ("demo.onecloud.example",),
        "Legacy: the sites shown while there is no site configuration file yet (the collector writes it on its"
        " first start).",
    )
    dashboards_host: str = setting("127.0.0.1", "Address `dashboards serve` listens on.")
    dashboards_port: int = setting(8001, "Port `dashboards serve` listens on.")
    dashboards_secret_key_file: Path | None = setting(
        None, "File with the session-signing key; empty: dashboards-secret.key in the data dir (made on start)."
    )
    dashboards_session_hours: int = setting(12, "Hours a dashboards login lasts (sessions also end at logout).")
    dashboards_secure_cookies: str = setting(
        "auto",
        "Mark the cookies Secure: `auto` when the request came over HTTPS (directly, or as a proxy's"
        " X-Forwarded-Proto or Forwarded header says), `1` always, `0` never.",
    )
    dashboards_login_limit_account: str = setting(
        "5/15minutes",
        "Failed logins allowed per account name from browsers not known to that account, and per known browser"
        " (moving window, `limits` syntax).",
    )
    dashboards_login_limit_address: str = setting(
        "20/15minutes",
        "Failed logins allowed per client address (IPv6: per /64) in a moving window (`limits` syntax).",
    )
    dashboards_login_hash_slots: int = setting(
        2,
        "Password checks (argon2, ~64 MiB each) run at once; one more is kept for known browsers; other"
        " concurrent logins get 429 with Retry-After.",
    )
    auth_proxy_header: str = setting(
        "", "Header carrying the user name set by a trusted reverse proxy (single sign-on); empty: off."
    )
    trusted_proxies: tuple[str, ...] = setting(
        (), "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed (default: none)."
    )
    dashboards_rollup_max_stale: float = setting(
        120.0,
        "Seconds a day's rollup may still answer the overview pages after new events landed in that day (one"
        " `ingest --follow` batch behind), its age shown on the page; 0: exact, the day is rolled up in memory"
        " instead. The Stats API and CSV exports are always exact.",
    )

    def validate(self) -> None:
        check_cidrs("ANALYTICS_TRUSTED_PROXIES", self.trusted_proxies)
        if self.dashboards_session_hours < 1:
            raise SettingsError("ANALYTICS_DASHBOARDS_SESSION_HOURS: must be at least 1")
        if self.dashboards_rollup_max_stale < 0:
            raise SettingsError("ANALYTICS_DASHBOARDS_ROLLUP_MAX_STALE: must not be negative")
        if self.dashboards_login_hash_slots < 1:
            raise SettingsError("ANALYTICS_DASHBOARDS_LOGIN_HASH_SLOTS: must be at least 1")
        if self.dashboards_secure_cookies.lower() not in SECURE_COOKIE_VALUES:
            raise SettingsError(
                f"ANALYTICS_DASHBOARDS_SECURE_COOKIES: {self.dashboards_secure_cookies!r} is not auto, 1 or 0"
            )
        if self.auth_proxy_header and not self.trusted_proxies:
            # A header anyone can send is no authentication: it needs a proxy we trust.
            raise SettingsError("ANALYTICS_AUTH_PROXY_HEADER needs ANALYTICS_TRUSTED_PROXIES")
        from limits import parse_many

        for var, value in (
            ("ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ACCOUNT", self.dashboards_login_limit_account),
            ("ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ADDRESS", self.dashboards_login_limit_address),
        ):
            try:
                parse_many(value)
            except ValueError:
                raise SettingsError(f"{var}: {value!r} is not a rate limit like '5/15minutes'") from None

    @property
    def secure_cookies(self) -> Literal["auto", "always", "never"]:
        return SECURE_COOKIE_VALUES[self.dashboards_secure_cookies.lower()]

    @property
    def site_config_path(self) -> Path:
        return self.site_config or self.data_dir / "sites.json"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "dashboards.sqlite3"

    @property
    def secret_key_path(self) -> Path:
        return self.dashboards_secret_key_file or self.data_dir / "dashboards-secret.key"

    def secret_key(self) -> bytes:
        """The signing key; made on first start (0600) so that no default secret exists."""
        path = self.secret_key_path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: read theirs
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32) + "\n")
        key = path.read_text().strip()
        if len(key) < 32:
            raise SettingsError(f"{path}: the secret key is shorter than 32 characters")
        return key.encode()
