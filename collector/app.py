"""The collector's ASGI app: the public Events API endpoint and its probes.

The hot path (``POST /api/event``) lives in :mod:`collector.endpoint`: read at
most ``max_body_bytes``, parse, gate, de-identify (cached UA parse, in-memory
ISP lookup, keyed hash), then await the spool's group commit. Nothing on it
blocks the event loop; the only I/O is in the spool's writer thread.
:class:`CollectorApp` hands that path to the endpoint before Starlette's
middleware and router see it (each layer costs a few coroutine calls per
request); everything else is a plain Starlette app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from collector.clientip import ClientAddress
from collector.dropcounts import DropCounts
from collector.endpoint import PATH, EventEndpoint
from collector.isp import IspDatabase, bundled_database
from collector.metrics import Metrics
from collector.pages import routes as page_routes
from collector.pipeline import Pipeline
from collector.rdns import NetworkDomains
from collector.salts import DayKeys, FileSaltStore, SaltStore
from collector.settings import Settings
from collector.shipper import Shipper, wait_until_shipped
from collector.siteconfig import DEMO_SITE, Watcher, ensure, seed_config
from collector.spool import Spool
from collector.useragent import UAParser

log = logging.getLogger("collector")


def salt_store(settings: Settings) -> SaltStore:
    if settings.salt_store == "postgres":
        # Imported only here: psycopg is the optional `postgres` extra.
        from collector.saltstore_pg import PgSaltStore

        return PgSaltStore(settings.salt_dsn)
    return FileSaltStore(settings.salt_dir)


class Collector:
    """Per-app resources (kept on ``app.state``; no module-level state)."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.client = ClientAddress(settings.trusted_proxies)
        self.isp: IspDatabase | None = None
        self.rdns: NetworkDomains | None = None
        self.keys = DayKeys(salt_store(settings), clock=clock)
        self.ua = UAParser(settings.ua_cache_size, settings.allow_headless, settings.ua_cache_bytes)
        self.siteconfig = site_config(settings)
        self._pipeline: Pipeline | None = None  # built by load_isp, with the ISP database it reads
        self.spool = Spool(
            settings.spool_dir,
            segment_seconds=settings.spool_segment_seconds,
            segment_bytes=settings.spool_segment_bytes,
            batch_events=settings.spool_batch_events,
            on_commit=self.metrics.on_commit,
        )
        # Drops per site, day and reason, written to the spool every minute (collector/dropcounts.py).
        self.drops = DropCounts(settings.spool_dir)
        self.shipper: Shipper | None = None
        if settings.spool_ship_url:
            from collector.shipper import s3_filesystem

            fs = s3_filesystem(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                               settings.s3_region, settings.s3_url_style)  # fmt: skip
            self.shipper = Shipper(settings.spool_dir / "sealed", settings.spool_ship_url, fs)

    @property
    def pipeline(self) -> Pipeline:
        """The event pipeline; the lifespan builds it (:meth:`load_isp`) before any request is served."""
        if self._pipeline is None:
            raise RuntimeError("the collector has not started: its lifespan builds the pipeline")
        return self._pipeline

    @property
    def origins(self) -> frozenset[bytes]:
        """Origins whose pages may post events from the browser (CORS): the configured sites'."""
        return self.pipeline.allow.origins

    def load_isp(self) -> None:
        # No operator database: the one shipped in the package, so ISPs resolve offline from the first run.
        path = self.settings.isp_db or bundled_database(self.settings.cache_dir)
        self.isp = IspDatabase(path)
        s = self.settings
        self._pipeline = Pipeline(
            s, self.ua, self.isp, self.keys, lambda: self.siteconfig.current, self.metrics.drop_prop
        )

    def load_network_domains(self) -> None:
        s = self.settings
        if s.network_domain:  # off by default: it sends visitors' addresses to the resolver
            self.rdns = NetworkDomains(s.dns_server, s.dns_timeout_ms / 1000, s.dns_cache_size)

    async def housekeeping(self) -> None:
        """Rotate salts past midnight and pick up a replaced ISP database."""
        while True:
            await asyncio.sleep(5)
            try:
                await asyncio.to_thread(self.keys.rotate)
                if self.isp is not None:
                    await asyncio.to_thread(self.isp.reload_if_changed)
            except Exception as exc:  # keep serving; say what failed, never with request data
                log.error("housekeeping failed: %s", exc.__class__.__name__)


def site_config(settings: Settings) -> Watcher:
    """The site configuration file, written from the legacy settings on a first start (docs/goals.md)."""
    path = settings.site_config_path
    seed = seed_config(settings.sites, settings.custom_events)
    config = ensure(path, seed)
    if settings.sites != (DEMO_SITE,) and set(settings.sites) != set(config.domains):
        # Not an error: the file is the source now, and a stale variable must not stop a restart.
        log.warning("ANALYTICS_SITES is not used: %s decides which sites are accepted (docs/goals.md)", path)
    return Watcher(path, seed)


async def watch_site_config(c: Collector) -> None:
    """Re-read the site configuration when its file changes: no restart, on every host that has a copy."""
    while True:
        await asyncio.sleep(c.settings.site_config_interval)
        try:
            changed = await asyncio.to_thread(c.siteconfig.check)
        except Exception as exc:  # keep serving with what is in force
            log.error("site configuration check failed: %s", exc.__class__.__name__)
            continue
        c.metrics.site_config(c.siteconfig.last_error is None, changed)
        if changed:
            config = c.siteconfig.current
            log.info("site configuration reloaded: revision %s, %d sites", config.revision, len(config.sites))
        elif c.siteconfig.last_error:
            log.error("site configuration not reloaded: %s", c.siteconfig.last_error)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    c: Collector = request.app.state.collector
    # A new UTC day on a full disk: no salt can be written, so no event can be keyed.
    salt = await asyncio.to_thread(c.keys.available)
    checks = {"spool": c.spool.ready(), "isp_database": c.isp is not None, "salt": salt}
    body: dict[str, Any] = {"ready": all(checks.values()), "checks": checks}
    if c.spool.last_error:
        body["spool_error"] = c.spool.last_error
    if not salt and c.keys.last_error:
        body["salt_error"] = c.keys.last_error
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def metrics(request: Request) -> Response:
    c: Collector = request.app.state.collector
    return Response(c.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(settings: Settings | None = None, *, clock: Callable[[], float] = time.time) -> Starlette:
    settings = settings or Settings.from_env()
    collector = Collector(settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(collector.load_isp)
        await asyncio.to_thread(collector.load_network_domains)
        await asyncio.to_thread(collector.keys.rotate)
        collector.spool.start()
        await asyncio.to_thread(collector.drops.start)
        if collector.shipper is not None:
            collector.shipper.start()
        tasks = [
            asyncio.create_task(collector.housekeeping()),
            asyncio.create_task(watch_site_config(collector)),
            asyncio.create_task(collector.drops.run()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await collector.drops.flush()  # before the shipper's last round, so they leave with the segments
            await asyncio.to_thread(collector.spool.close)
            if collector.shipper is not None:
                await asyncio.to_thread(collector.shipper.close)
                await asyncio.to_thread(wait_until_shipped, collector.shipper, 5.0)
            if collector.isp is not None:
                collector.isp.close()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        # The beacon script, the opt-out page and the transparency page (collector/pages.py).
        *page_routes(settings, collector.client, lambda: collector.pipeline),
    ]
    app = CollectorApp(EventEndpoint(collector), routes=routes, lifespan=lifespan)
    app.state.collector = collector
    return app


class CollectorApp(Starlette):
    """Starlette, with ``/api/event`` answered by :class:`EventEndpoint` before Starlette's own stack.

    The endpoint does what the stack would (errors become a clear status, counted;
    CORS is its own), so skipping the stack changes no answer, only its cost.
    """

    def __init__(self, events: EventEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.events(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)
