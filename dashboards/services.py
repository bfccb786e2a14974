"""Everything a request needs, built once per app from the settings (lifespan state, no globals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from starlette.requests import HTTPConnection

from aggregator import fmt
from aggregator.settings import Settings as AggregatorSettings
from collector.siteconfig import DEFAULT_CUSTOM_EVENTS, SiteConfig, Watcher, seed_config
from dashboards.alertrules import AlertRules
from dashboards.annotations import Annotations
from dashboards.apikeys import ApiKeys
from dashboards.audit import AuditLog
from dashboards.auth import Authenticator
from dashboards.querying import Queries
from dashboards.ratelimit import LoginLimiter, ViewLimiter
from dashboards.sessions import KnownDevices, Sessions
from dashboards.settings import Settings
from dashboards.shares import SharedLinks
from dashboards.store import Store
from dashboards.users import Users

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Views through shared links: per link from everywhere, and per client address (docs/dashboards.md).
SHARE_LIMIT_LINK = "600/minute"
SHARE_LIMIT_ADDRESS = "60/minute"


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
    queries: Queries
    templates: jinja2.Environment
    #: The one site configuration (collector.siteconfig), re-read when its file changes.
    siteconfig: Watcher

    def site_config(self) -> SiteConfig:
        """The configuration in force: one ``stat`` per call, re-read when the file changed."""
        self.siteconfig.check()
        return self.siteconfig.current

    def sites(self) -> tuple[str, ...]:
        return self.site_config().domains

    annotations: Annotations
    shares: SharedLinks
    alert_rules: AlertRules
    share_limiter: ViewLimiter
    #: The time, injectable so that tests can run a view "tomorrow" (expiry, partial buckets, realtime).
    clock: Callable[[], dt.datetime]

    def now(self) -> dt.datetime:
        return self.clock()

    @classmethod
    def build(
        cls,
        settings: Settings,
        aggregator: AggregatorSettings,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> Services:
        """From the settings built once at the edge (``create_app``): nothing here reads the environment."""
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
        queries = Queries(aggregator, settings.dashboards_rollup_max_stale)
        devices = KnownDevices(secret)
        keys, audit = ApiKeys(store), AuditLog(store)
        siteconfig = Watcher(settings.site_config_path, seed_config(settings.sites, DEFAULT_CUSTOM_EVENTS))
        notes = Annotations(store, settings.data_dir)
        rules = AlertRules(store, settings.data_dir)
        # The files the aggregator reads are rewritten from the database at every start (after a restore too).
        notes.publish()
        rules.publish()
        return cls(
            settings,
            store,
            users,
            sessions,
            devices,
            keys,
            audit,
            limiter,
            auth,
            queries,
            make_templates(),
            siteconfig,
            notes,
            SharedLinks(store),
            rules,
            ViewLimiter(SHARE_LIMIT_LINK, SHARE_LIMIT_ADDRESS),
            clock or _utcnow,
        )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.state.svc
    return svc
