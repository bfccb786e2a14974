"""``POST /api/event`` as a raw ASGI handler in front of the Starlette app.

This is the path that runs thousands of times a second, so it skips the
framework's per-request objects: one pass over the header list picks out the
few headers it needs, the body is read in chunks up to the cap, and the
response is two ASGI messages. Everything else (probes, pages) goes through
Starlette as usual.

Order of checks: opt-out first (a visitor who objects is not examined further),
then content type, size, syntax, and the gate (site, event name, bots).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from collector.devices import client_hints
from collector.payload import PayloadError, parse_payload
from collector.pipeline import Dropped, Hit
from collector.salts import SaltUnavailable
from collector.spool import SpoolUnavailable

if TYPE_CHECKING:
    from collector.app import Collector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("collector")

PATH = "/api/event"
_ACCEPTED_TYPES = (b"text/plain", b"application/json")
_OK = b"ok"
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")


class EventEndpoint:
    """ASGI middleware: serves ``/api/event`` itself, passes everything else on."""

    def __init__(self, app: ASGIApp, collector: Collector) -> None:
        self.app = app
        self.c = collector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "POST":
            try:
                await self._event(scope, receive, send)
            except Exception as exc:
                self._log_failure(exc)
                self.c.metrics.reject("internal_error")
                await _respond(send, 500, _error_body("server", "internal error"), [_JSON])
        elif method == "OPTIONS":
            await self._preflight(scope, send)
        else:
            await _respond(send, 405, _error_body("method", "use POST"), [_JSON, (b"allow", b"POST, OPTIONS")])

    @staticmethod
    def _log_failure(exc: Exception) -> None:
        # Log where, never what: an exception's text can quote request data.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("event handler failed: %s at %s", exc.__class__.__name__, where)

    def _cors(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is not None and origin in self.c.origins:
            return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        return []

    async def _preflight(self, scope: Scope, send: Send) -> None:
        origin = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
        headers = self._cors(origin)
        if headers:
            headers += [
                (b"access-control-allow-methods", b"POST"),
                (b"access-control-allow-headers", b"Content-Type"),
                (b"access-control-max-age", b"86400"),
            ]
        await _respond(send, 204, b"", headers)

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        c = self.c
        m = c.metrics
        m.received.inc()
        ctype = length = ua = xff = origin = ch_platform = ch_mobile = ch_brands = None
        gpc = dnt = False
        for key, value in scope["headers"]:
            if key == b"content-type":
                ctype = value
            elif key == b"content-length":
                length = value
            elif key == b"user-agent":
                ua = value
            elif key == b"x-forwarded-for":
                xff = value if xff is None else xff + b"," + value
            elif key == b"origin":
                origin = value
            elif key == b"sec-gpc":
                gpc = value.strip() == b"1"
            elif key == b"dnt":
                dnt = value.strip() == b"1"
            elif key == b"sec-ch-ua-platform":
                ch_platform = value
            elif key == b"sec-ch-ua-mobile":
                ch_mobile = value
            elif key == b"sec-ch-ua":
                ch_brands = value
        cors = self._cors(origin)

        # The visitor's objection comes first: nothing about the request is examined further.
        if gpc or (dnt and c.settings.respect_dnt):
            m.drop("opt_out")
            await _respond(send, 202, _OK, [_TEXT, (b"x-drop-reason", b"opt_out"), *cors])
            return

        if ctype is None or ctype.split(b";", 1)[0].strip().lower() not in _ACCEPTED_TYPES:
            m.reject("unsupported_media_type")
            await _respond(
                send, 415, _error_body("content-type", "send text/plain or application/json"), [_JSON, *cors]
            )
            return

        cap = c.settings.max_body_bytes
        if length is not None:
            if not length.isdigit():
                m.reject("bad_request")
                await _respond(send, 400, _error_body("content-length", "invalid Content-Length"), [_JSON, *cors])
                return
            if int(length) > cap:
                m.reject("too_large")
                await _respond(send, 413, _error_body("body", f"body larger than {cap} bytes"), [_JSON, *cors])
                return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > cap:
                m.reject("too_large")
                await _respond(send, 413, _error_body("body", f"body larger than {cap} bytes"), [_JSON, *cors])
                return
            if not message.get("more_body", False):
                break

        try:
            payload = parse_payload(body)
        except PayloadError as exc:
            m.reject("bad_request")
            await _respond(send, 400, _error_body(exc.field, exc.message), [_JSON, *cors])
            return

        client = scope.get("client")
        peer = client[0] if client else None
        ip = c.client.resolve(peer, xff.decode("latin-1") if xff is not None else None)
        domain = None
        if c.rdns is not None and ip is not None and c.pipeline.site_for(payload.domain) is not None:
            # Bounded by the DNS timeout; only for allowlisted sites, so spam sends no address anywhere.
            domain = await c.rdns.domain_of(ip)
        hit = Hit(
            payload=payload,
            ip=ip,
            ua=ua.decode("latin-1") if ua is not None else "",
            ts=int(c.clock()),
            network_domain=domain,
            # Reduced to a closed set right here: the header strings go no further.
            hints=client_hints(ch_platform, ch_mobile, ch_brands),
        )
        try:
            event = c.pipeline.build(hit)
        except Dropped as drop:
            m.drop(drop.reason, drop.kind)
            await _respond(send, 202, _OK, [_TEXT, (b"x-drop-reason", drop.reason.encode()), *cors])
            return
        except SaltUnavailable:
            # No shared salt for today yet (store unreachable): refuse rather than key with a private one.
            m.reject("unavailable")
            await _unavailable(send, "salt", "event could not be keyed; retry later", cors)
            return
        del hit, ip, ua, xff, ch_platform, ch_mobile, ch_brands  # the raw view ends here

        try:
            await c.spool.append(event)
        except SpoolUnavailable:
            m.reject("unavailable")
            await _unavailable(send, "spool", "event could not be stored; retry later", cors)
            return
        m.accepted.inc()
        await _respond(send, 202, _OK, [_TEXT, *cors])


def _error_body(field: str, message: str) -> bytes:
    return orjson.dumps({"error": message, "field": field})


async def _unavailable(send: Send, field: str, message: str, cors: list[tuple[bytes, bytes]]) -> None:
    # 503 with Retry-After: the event was not acknowledged, a client that can retry should.
    await _respond(send, 503, _error_body(field, message), [_JSON, (b"retry-after", b"5"), *cors])


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
