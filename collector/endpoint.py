"""``/api/event``: the raw ASGI app :class:`collector.app.CollectorApp` calls before Starlette's stack.

This is the path that runs thousands of times a second, so it skips the
framework's per-request objects and its middleware: one pass over the header
list picks out the few headers it needs, the body is read in chunks up to the
cap, and the response is two ASGI messages whose header lists are built once
per kind of answer and CORS origin (collector/httpserver.py then writes each
response as one write). Everything else (probes, pages) goes through Starlette
as usual. An unexpected failure is a 500 from here, counted and logged by
where it happened, never by what the request carried.

Order of checks: opt-out first (a visitor who objects is not examined further),
then content type, size, syntax, and the gate (site, event name, bots).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
from starlette.types import Receive, Scope, Send

from collector.devices import client_hints
from collector.payload import PayloadError, parse_payload
from collector.pipeline import Dropped, Hit
from collector.salts import SaltUnavailable
from collector.spool import SpoolUnavailable

if TYPE_CHECKING:
    from collector.app import Collector

Header = tuple[bytes, bytes]

log = logging.getLogger("collector")

PATH = "/api/event"
_ACCEPTED_TYPES = (b"text/plain", b"application/json")
_OK = b"ok"
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")
_OK_LENGTH = (b"content-length", b"2")
_NO_CORS: tuple[Header, ...] = ()
#: CORS origins whose answer headers are kept (the allowed sites' origins, at most).
_MAX_ORIGINS = 4096


class EventEndpoint:
    """Serves ``/api/event`` (any method); :class:`collector.app.CollectorApp` routes to it."""

    def __init__(self, collector: Collector) -> None:
        self.c = collector
        # Per allowed origin (and for none): the header lists of the 202 answers, built once.
        self._ok: dict[bytes | None, list[Header]] = {}
        self._dropped: dict[tuple[bytes | None, str], list[Header]] = {}
        self._origins: frozenset[bytes] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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

    def _allowed(self, origin: bytes | None) -> bytes | None:
        """``origin`` if it is one of the configured sites' (CORS), else ``None``."""
        if origin is None:
            return None
        origins = self.c.origins
        if origins is not self._origins:  # the site configuration changed: rebuild the header lists
            self._origins = origins
            self._ok.clear()
            self._dropped.clear()
        return origin if origin in origins else None

    def _origin_site(self, origin: bytes | None) -> str | None:
        """The site an allowed origin (:meth:`_allowed`) belongs to: ``https://www.x`` is site ``x``."""
        return None if origin is None else self.c.pipeline.site_for(origin.partition(b"://")[2].decode("latin-1"))

    @staticmethod
    def _cors(origin: bytes | None) -> tuple[Header, ...]:
        return _NO_CORS if origin is None else ((b"access-control-allow-origin", origin), (b"vary", b"Origin"))

    def _ok_headers(self, origin: bytes | None) -> list[Header]:
        headers = self._ok.get(origin)
        if headers is None:
            if len(self._ok) >= _MAX_ORIGINS:
                self._ok.clear()
            headers = self._ok[origin] = [_TEXT, *self._cors(origin), _OK_LENGTH]
        return headers

    def _drop_headers(self, origin: bytes | None, reason: str) -> list[Header]:
        headers = self._dropped.get((origin, reason))
        if headers is None:
            if len(self._dropped) >= _MAX_ORIGINS:
                self._dropped.clear()
            cors = self._cors(origin)
            headers = self._dropped[origin, reason] = [_TEXT, (b"x-drop-reason", reason.encode()), *cors, _OK_LENGTH]
        return headers

    async def _preflight(self, scope: Scope, send: Send) -> None:
        origin = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
        headers = list(self._cors(self._allowed(origin)))
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
        raw = scope["headers"]
        headers = dict(raw)  # for a repeated header the last line counts, as for any header here...
        xff = headers.get(b"x-forwarded-for")
        if xff is not None and len(headers) != len(raw):
            # ...except X-Forwarded-For: repeated lines (each proxy may add its own) are one list.
            xff = b",".join(value for key, value in raw if key == b"x-forwarded-for")
        origin = self._allowed(headers.get(b"origin"))

        # The visitor's objection comes first: nothing about the request is examined further.
        gpc = headers.get(b"sec-gpc")
        dnt = headers.get(b"dnt") if c.settings.respect_dnt else None
        if (gpc is not None and gpc.strip() == b"1") or (dnt is not None and dnt.strip() == b"1"):
            m.drop("opt_out")
            # The site by the request's Origin (the configured sites' only): the body is not read.
            c.drops.add(self._origin_site(origin), int(c.clock()), "opt_out")
            await _respond_ok(send, self._drop_headers(origin, "opt_out"))
            return

        cors = self._cors(origin)
        ctype = headers.get(b"content-type")
        if ctype is None or ctype.split(b";", 1)[0].strip().lower() not in _ACCEPTED_TYPES:
            m.reject("unsupported_media_type")
            body = _error_body("content-type", "send text/plain or application/json")
            await _respond(send, 415, body, [_JSON, *cors])
            return

        cap = c.settings.max_body_bytes
        length = headers.get(b"content-length")
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
        ua = headers.get(b"user-agent")
        hit = Hit(
            payload=payload,
            ip=ip,
            ua=ua.decode("latin-1") if ua is not None else "",
            ts=int(c.clock()),
            network_domain=domain,
            # Reduced to a closed set right here: the header strings go no further.
            hints=client_hints(
                headers.get(b"sec-ch-ua-platform"), headers.get(b"sec-ch-ua-mobile"), headers.get(b"sec-ch-ua")
            ),
        )
        try:
            event = c.pipeline.build(hit)
        except Dropped as drop:
            m.drop(drop.reason, drop.kind)
            c.drops.add(drop.site, hit.ts, drop.reason, drop.kind)
            await _respond_ok(send, self._drop_headers(origin, drop.reason))
            return
        except SaltUnavailable:
            # No shared salt for today yet (store unreachable): refuse rather than key with a private one.
            m.reject("unavailable")
            await _unavailable(send, "salt", "event could not be keyed; retry later", cors)
            return
        del hit, ip, ua, xff, headers, raw  # the raw view ends here

        try:
            await c.spool.append(event)
        except SpoolUnavailable:
            m.reject("unavailable")
            await _unavailable(send, "spool", "event could not be stored; retry later", cors)
            return
        await _respond_ok(send, self._ok_headers(origin))


def _error_body(field: str, message: str) -> bytes:
    return orjson.dumps({"error": message, "field": field})


async def _unavailable(send: Send, field: str, message: str, cors: tuple[Header, ...]) -> None:
    # 503 with Retry-After: the event was not acknowledged, a client that can retry should.
    await _respond(send, 503, _error_body(field, message), [_JSON, (b"retry-after", b"5"), *cors])


async def _respond(send: Send, status: int, body: bytes, headers: list[Header]) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_ok(send: Send, headers: list[Header]) -> None:
    """202 "ok" with a prebuilt header list (content-length included; never changed after it is built)."""
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": _OK})
