"""Everything a request needs, built once per app from the settings (lifespan state, no globals)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from starlette.requests import HTTPConnection

from collector.siteconfig import DEFAULT_CUSTOM_EVENTS, SiteConfig, Watcher, seed_config
from dashboards import fmt
from dashboards.apikeys import ApiKeys
from dashboards.audit import AuditLog
from dashboards.auth import Authenticator
from dashboards.ratelimit import LoginLimiter
from dashboards.reports import Reports
from dashboards.sessions import KnownDevices, Sessions
from dashboards.settings import Settings
from dashboards.store import Store
from dashboards.users import Users

TEMPLATES = Path(__file__).resolve().parent / "templates"


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Every value from the lake is attacker-controlled (PRIVACY.md rule 11): escape always.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["metric"] = fmt.metric
    env.filters["compact"] = fmt.compact
    env.filters["duration"] = fmt.duration
    env.filters["timestamp"] = fmt.timestamp
    return env


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: Store
    users: Users
    sessions: Sessions
    devices: KnownDevices
    keys: ApiKeys
    audit: AuditLog
    limiter: LoginLimiter
    auth: Authenticator
    reports: Reports
    templates: jinja2.Environment
    #: The one site configuration (collector.siteconfig), re-read when its file changes.
    siteconfig: Watcher

    def site_config(self) -> SiteConfig:
        """The configuration in force: one ``stat`` per call, re-read when the file changed."""
        self.siteconfig.check()
        return self.siteconfig.current

    def sites(self) -> tuple[str, ...]:
        return self.site_config().domains

    @classmethod
    def build(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Services:
        secret = settings.secret_key()
        store = Store(settings.db_path)
        users = Users(store)
        sessions = Sessions(store, secret, settings.dashboards_session_hours * 3600)
        auth = Authenticator(sessions, users, secret, settings.auth_proxy_header, settings.trusted_proxies)
        limiter = LoginLimiter(
            settings.dashboards_login_limit_account,
            settings.dashboards_login_limit_address,
            settings.dashboards_login_hash_slots,
        )
        reports = Reports(settings.data_dir, os.environ if environ is None else environ)
        devices = KnownDevices(secret)
        keys, audit = ApiKeys(store), AuditLog(store)
        siteconfig = Watcher(settings.site_config_path, seed_config(settings.sites, DEFAULT_CUSTOM_EVENTS))
        return cls(
            settings, store, users, sessions, devices, keys, audit, limiter, auth, reports, make_templates(),
            siteconfig=siteconfig,
        )  # fmt: skip


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.state.svc
    return svc
