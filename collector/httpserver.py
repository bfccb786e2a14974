"""The HTTP/1.1 protocol ``collector serve`` runs: uvicorn's httptools protocol, with limits.

The collector must be safe with nobody in front of it, and uvicorn's fast
protocol (httptools/llhttp, the one uvicorn[standard] picks) enforces no limit
on its own: no cap on the size of a request head (a 1 MB User-Agent is read and
handed to the app), no deadline for a head or a body that trickles in byte by
byte (its keep-alive timer only runs between requests and stops at the first
byte), and no ceiling on open connections short of the file-descriptor limit,
where accept() fails and nobody is served any more. uvicorn's h11 protocol caps
the head (``h11_max_incomplete_event_size``) but parses in pure Python, several
times slower on this path; its ``limit_concurrency`` answers 503 to *every* new
request while that many connections are open, which is what a slow-client
attack wants. So this subclass adds, per worker process:

- a head cap: more than ``max_header_bytes`` of request line + headers is
  answered 431 and the connection closed, before any of it reaches the app;
- a head deadline (``header_timeout``, from connecting or from the previous
  response) and a body deadline (``body_timeout``, from the end of the head):
  a client that misses either is disconnected (408 if it was still on its head);
- a connection ceiling (``max_connections``, kept below the descriptor limit):
  when a new connection would exceed it, the connection that has kept the
  collector waiting longest for its client is closed. Connections whose request
  the app is already answering are never chosen; if all of them are, the new
  connection gets 503. A flood of slow or idle sockets thus pushes out its own
  oldest members, never a visitor whose request arrived whole.

The deadlines cost no timer churn per request: a connection keeps at most one
timer, which on firing re-arms itself for the current deadline.
"""

from __future__ import annotations

import asyncio
import resource
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from collector.httpcycle import CoalescingCycle

# What the protocol is waiting for.
_HEAD, _BODY, _APP = 0, 1, 2


def _response(status: bytes, message: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
        + str(len(message)).encode()
        + b"\r\nconnection: close\r\n"
        + extra
        + b"\r\n"
        + message
    )


_TOO_LARGE = _response(b"431 Request Header Fields Too Large", b"request head too large")
_TIMEOUT = _response(b"408 Request Timeout", b"request head not received in time")
_BUSY = _response(b"503 Service Unavailable", b"too many connections", b"retry-after: 5\r\n")


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int


def descriptor_headroom(soft_limit: int) -> int:
    """Descriptors kept free for everything but client sockets: spool, salts, ISP database, logs,
    DNS sockets, and connections accepted in one burst before the ceiling closes older ones."""
    return max(64, soft_limit // 4)


def connection_ceiling(max_connections: int) -> int:
    """``max_connections``, lowered to fit this process's descriptor limit (accept() must never fail)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - descriptor_headroom(soft)))


def raise_descriptor_limit(max_connections: int) -> None:
    """Raise the soft descriptor limit towards the hard one, as far as ``max_connections`` needs.

    systemd (and most shells) start services with a soft limit of 1024 and a much
    higher hard limit, expecting programs that need more to raise it themselves;
    uvloop uses epoll, so the select() reason for the low default does not apply.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + descriptor_headroom(max_connections * 4 // 3)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@cache
def current_limits() -> Limits:
    """This worker's limits, from the same ``ANALYTICS_*`` settings the app reads (once per process)."""
    from collector.settings import Settings

    s = Settings.from_env()
    return Limits(s.max_header_bytes, s.header_timeout, s.body_timeout, connection_ceiling(s.max_connections))


class _HeadTooLarge(Exception):
    pass


# Per server: the connections waiting for their client, the longest-waiting first.
_waiting: weakref.WeakKeyDictionary[ServerState, OrderedDict[CollectorHttpProtocol, None]] = weakref.WeakKeyDictionary()


class CollectorHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or current_limits()
        waiting = _waiting.get(server_state)
        if waiting is None:
            waiting = _waiting[server_state] = OrderedDict()
        self._waiting = waiting
        self._phase = _HEAD
        self._since = 0.0  # loop time at which the current wait for the client began
        self._head_bytes = 0  # bytes received since the last complete request (an upper bound of the head)
        self._head_too_large = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- the wait for the client, and its one timer ---------------------------------

    def _wait_for(self, phase: int) -> None:
        self._phase = phase
        self._since = now = self.loop.time()
        self._waiting[self] = None
        self._waiting.move_to_end(self)
        deadline = now + (self.limits.header_timeout if phase == _HEAD else self.limits.body_timeout)
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _app_busy(self) -> bool:
        # A pipelined request can be in the app while the next head is awaited.
        return self.cycle is not None and not self.cycle.response_complete and self._phase == _HEAD

    def _on_timer(self) -> None:
        self._timer = None
        if self._phase == _APP or self.transport.is_closing():
            return
        now = self.loop.time()
        deadline = self._since + (self.limits.header_timeout if self._phase == _HEAD else self.limits.body_timeout)
        if now < deadline:
            self._arm(deadline)
        elif self._app_busy():
            self._arm(now + self.limits.header_timeout)
        else:
            # On its head, nothing has been answered yet: say why. Mid-body the app may have answered.
            self._close(_TIMEOUT if self._phase == _HEAD else b"")

    def _close(self, response: bytes) -> None:
        self._waiting.pop(self, None)
        self._phase = _APP  # nothing more is awaited from this client
        if response and not self.transport.is_closing():
            self.transport.write(response)
        self.transport.close()

    # -- uvicorn's protocol, with the limits ----------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for(_HEAD)
        if len(self.connections) > self.limits.max_connections:
            oldest = next(iter(self._waiting))
            # The newest connection is last: it is chosen only when every other one is in the app.
            oldest._close(_BUSY if oldest is self else b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase != _BODY:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head still incomplete past the cap: the parser holds at most the cap plus one read.
        if self._phase != _BODY and self._head_bytes > self.limits.max_header_bytes:
            if not self.transport.is_closing():
                self._close(_TOO_LARGE)

    def on_headers_complete(self) -> None:
        # Exact size of a head that arrived within one read (the byte count above may not have seen it).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge  # the parser stops; uvicorn answers through send_400_response below
        self._wait_for(_BODY)
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            # The same cycle, writing its head with its body (collector/httpcycle.py). Swapping the
            # class of the cycle uvicorn just built, rather than copying the ~50 lines that build
            # it, keeps every other step of uvicorn's own code; the task that will run it has not
            # started yet, so its first send is already the coalescing one.
            self.cycle.__class__ = CoalescingCycle

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body ended (413): the next head is awaited from now on.
            self._wait_for(_HEAD)
        else:
            self._waiting.pop(self, None)
            self._phase = _APP

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._phase == _APP and not self.transport.is_closing():
            self._wait_for(_HEAD)

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._close(_TOO_LARGE)
        else:
            super().send_400_response(msg)
