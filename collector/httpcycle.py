"""uvicorn's response cycle, writing a response's head together with its body: one write per response.

uvicorn's ``RequestResponseCycle.send`` writes the status line and headers as
soon as the app sends ``http.response.start``, and the body with the next
message: two ``transport.write`` calls, two ``send`` syscalls for a 202 of two
bytes. On loopback and on a VM a send costs several microseconds (the kernel
runs the peer's receive path in the sender's context); profiled under load it
was ~40 % of the event loop's time in a bare Starlette app. Here the head is
kept until the first body message and written with it, so a whole small
response is one write (a streamed one: head and first chunk together).

The rendered head is also memoised: the collector answers with a handful of
distinct heads (202 with or without a drop reason, per allowed CORS origin,
per body length), and uvicorn's rendering checks every header against two
regular expressions each time. The cache is keyed by everything the rendering
reads, including the server's default headers (the ``date`` changes every
second), and bounded; only heads up to :data:`MAX_CACHED_HEAD` bytes are kept,
so what it holds in memory stays small whatever a header carries.

Everything else (``100 Continue``, ``HEAD``, chunked bodies, ``connection:
close``, the checks that a body matches its ``content-length``) is uvicorn's
behaviour, unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle

MAX_CACHED_HEAD = 1024
HEADS_CACHED = 512


class Head(NamedTuple):
    data: bytes
    content_length: int  # what the body must add up to (0 when chunked or absent)
    chunked: bool | None  # None: neither a content-length nor a transfer-encoding was given
    keep_alive: bool


Headers = tuple[tuple[bytes, bytes], ...]


def render_head(status: int, headers: Headers, keep_alive: bool, method_is_head: bool) -> Head:
    """uvicorn 0.54's head rendering (``RequestResponseCycle.send``), as a pure function."""
    content = [STATUS_LINE[status]]
    has_connection_close = False
    content_length = 0
    chunked: bool | None = None
    for name, value in headers:
        if HEADER_RE.search(name):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
        name = name.lower()
        if name == b"content-length" and chunked is None:
            content_length = int(value.decode())
            chunked = False
        elif name == b"transfer-encoding" and value.lower() == b"chunked":
            content_length = 0
            chunked = True
        elif name == b"connection":
            if b"close" in [token.lower().strip() for token in value.split(b",")]:
                keep_alive = False
                has_connection_close = True
        content.extend([name, b": ", value, b"\r\n"])
    if not keep_alive and not has_connection_close:
        content.append(b"connection: close\r\n")
    if chunked is None and not method_is_head and status not in (204, 304):
        chunked = True
        content.append(b"transfer-encoding: chunked\r\n")
    content.append(b"\r\n")
    return Head(b"".join(content), content_length, chunked, keep_alive)


# Memo of render_head: a few distinct heads per second; cleared when full rather than LRU-ordered
# (cheaper per response, and after a clear the heads in use are back within a second).
_heads: dict[tuple[int, Headers, bool, bool], Head] = {}


def head_for(status: int, headers: Headers, keep_alive: bool, method_is_head: bool) -> Head:
    key = (status, headers, keep_alive, method_is_head)
    try:
        head = _heads.get(key)
    except TypeError:  # an app sent headers as lists (unhashable): rendered each time
        return render_head(status, headers, keep_alive, method_is_head)
    if head is None:
        head = render_head(status, headers, keep_alive, method_is_head)
        if len(head.data) <= MAX_CACHED_HEAD:  # long heads (long redirects) are rare: not kept
            if len(_heads) >= HEADS_CACHED:
                _heads.clear()
            _heads[key] = head
    return head


class CoalescingCycle(RequestResponseCycle):
    """A ``RequestResponseCycle`` whose ``send`` writes the head with the first body message."""

    _head = b""

    async def send(self, message: ASGISendEvent) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
            self.response_started = True
            self.waiting_for_100_continue = False
            headers: Headers = (*self.default_headers, *message.get("headers", ()))
            rendered = head_for(message["status"], headers, self.keep_alive, self.scope["method"] == "HEAD")
            self._head = rendered.data
            self.expected_content_length = rendered.content_length
            self.chunked_encoding = rendered.chunked
            self.keep_alive = rendered.keep_alive
            return
        if self.response_complete:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")
        if message["type"] != "http.response.body":
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        head, self._head = self._head, b""
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = head
        elif self.chunked_encoding:
            data = b"".join((head, b"%x\r\n" % len(body), body, b"\r\n") if body else (head,))
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = b"".join((head, body)) if head else body
        if data:
            self.transport.write(data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()
