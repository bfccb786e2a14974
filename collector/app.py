"""The collector's ASGI app: the public Events API endpoint and its probes.

Hot path (``POST /api/event``): read at most ``max_body_bytes``, parse, gate,
de-identify (cached UA parse, in-memory ISP lookup, keyed hash), then await the
spool's group commit. Nothing on this path blocks the event loop; the only I/O
is in the spool's writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector.clientip import ClientAddress
from collector.isp import IspDatabase
from collector.metrics import Metrics
from collector.pages import routes as page_routes
from collector.payload import PayloadError, parse_payload
from collector.pipeline import Dropped, Hit, Pipeline
from collector.salts import DayKeys, FileSaltStore
from collector.settings import Settings
from collector.spool import Spool, SpoolUnavailable
from collector.useragent import UAParser

log = logging.getLogger("collector")

_ACCEPTED_TYPES = ("text/plain", "application/json")
_RETRY_AFTER = "5"


class _Collector:
    """Per-app resources (kept on ``app.state``; no module-level state)."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.client = ClientAddress(settings.trusted_proxies)
        self.isp: IspDatabase | None = None
        self.keys = DayKeys(FileSaltStore(settings.salt_dir), clock=clock)
        self.ua = UAParser(settings.ua_cache_size, settings.allow_headless)
        self.pipeline = Pipeline(settings, self.ua, None, self.keys)
        self.spool = Spool(
            settings.spool_dir,
            segment_seconds=settings.spool_segment_seconds,
            segment_bytes=settings.spool_segment_bytes,
            batch_events=settings.spool_batch_events,
            on_commit=self.metrics.on_commit,
        )
        self.origins = set()
        for site in settings.sites:
            bare = site.strip().lower().removeprefix("www.")
            for host in (bare, "www." + bare):
                self.origins.add(f"https://{host}")
                self.origins.add(f"http://{host}")

    def load_isp(self) -> None:
        path = self.settings.isp_db
        if path is not None:
            self.isp = IspDatabase(path)
            self.pipeline.isp = self.isp

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


def _error(status: int, field: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": message, "field": field})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _cors(c: _Collector, request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin and origin in c.origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


async def event(request: Request) -> Response:
    try:
        return await _event(request)
    except Exception as exc:
        # Log where, never what: an exception's text can quote request data.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("event handler failed: %s at %s", exc.__class__.__name__, where)
        request.app.state.collector.metrics.reject("internal_error")
        return _error(500, "server", "internal error")


async def _event(request: Request) -> Response:
    c: _Collector = request.app.state.collector
    m = c.metrics
    m.received.inc()
    headers = request.headers
    cors = _cors(c, request)

    # The visitor's objection comes first: nothing about the request is examined further.
    if headers.get("sec-gpc") == "1" or (c.settings.respect_dnt and headers.get("dnt") == "1"):
        m.drop("opt_out")
        return PlainTextResponse("ok", 202, headers={"X-Drop-Reason": "opt_out", **cors})

    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in _ACCEPTED_TYPES:
        m.reject("unsupported_media_type")
        return _error(415, "content-type", "send text/plain or application/json", cors)

    cap = c.settings.max_body_bytes
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            m.reject("bad_request")
            return _error(400, "content-length", "invalid Content-Length")
        if int(declared) > cap:
            m.reject("too_large")
            return _error(413, "body", f"body larger than {cap} bytes", cors)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            m.reject("too_large")
            return _error(413, "body", f"body larger than {cap} bytes", cors)

    try:
        payload = parse_payload(bytes(body))
    except PayloadError as exc:
        m.reject("bad_request")
        return _error(400, exc.field, exc.message, cors)

    peer = request.client.host if request.client else None
    ip = c.client.resolve(peer, headers.get("x-forwarded-for"))
    now = int(c.clock())
    hit = Hit(payload=payload, ip=ip, ua=headers.get("user-agent", ""), ts=now)
    try:
        ev = c.pipeline.build(hit)
    except Dropped as drop:
        m.drop(drop.reason)
        return PlainTextResponse("ok", 202, headers={"X-Drop-Reason": drop.reason, **cors})
    del hit  # the raw view ends here

    line = orjson.dumps(ev.to_record(), option=orjson.OPT_APPEND_NEWLINE)
    try:
        await c.spool.append(line)
    except SpoolUnavailable:
        m.reject("unavailable")
        return _error(503, "spool", "event could not be stored; retry later", {"Retry-After": _RETRY_AFTER, **cors})
    m.accepted.inc()
    return PlainTextResponse("ok", 202, headers=cors)


async def preflight(request: Request) -> Response:
    c: _Collector = request.app.state.collector
    headers = _cors(c, request)
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
            }
        )
    return Response(status_code=204, headers=headers)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    c: _Collector = request.app.state.collector
    checks = {"spool": c.spool.ready(), "isp_database": c.isp is not None}
    body: dict[str, Any] = {"ready": all(checks.values()), "checks": checks}
    if c.spool.last_error:
        body["spool_error"] = c.spool.last_error
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def metrics(request: Request) -> Response:
    c: _Collector = request.app.state.collector
    return Response(c.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(settings: Settings | None = None, *, clock: Callable[[], float] = time.time) -> Starlette:
    settings = settings or Settings.from_env()
    collector = _Collector(settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(collector.load_isp)
        await asyncio.to_thread(collector.keys.rotate)
        collector.spool.start()
        task = asyncio.create_task(collector.housekeeping())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(collector.spool.close)
            if collector.isp is not None:
                collector.isp.close()

    routes = [
        Route("/api/event", event, methods=["POST"]),
        Route("/api/event", preflight, methods=["OPTIONS"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        # The beacon script, the opt-out page and the transparency page (collector/pages.py).
        *page_routes(settings, collector.client, collector.pipeline),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.collector = collector
    return app
