"""`collector serve`'s protocol writes each response as one write, byte for byte what uvicorn would send.

The protocol runs in-process over a transport that records its writes (the
asyncio transport is the one thing stood in for: counting writes is the
point). The same requests through uvicorn's own protocol give the bytes to
compare with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from collector.httpcycle import HEADS_CACHED, MAX_CACHED_HEAD, Head, _heads, head_for, render_head
from collector.httpserver import CollectorHttpProtocol, Limits

LIMITS = Limits(max_header_bytes=16384, header_timeout=10, body_timeout=10, max_connections=100)


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def small(request: Request) -> Response:
    await request.body()
    return PlainTextResponse("ok", 202, headers={"x-drop-reason": "bot"})


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one", b"two", b"three"):
            yield part

    return StreamingResponse(chunks(), media_type="text/plain")


async def raw_lists(scope: Any, receive: Any, send: Any) -> None:
    # Headers as lists, as the ASGI spec allows ("iterable of [name, value]").
    await send({"type": "http.response.start", "status": 200, "headers": [[b"content-length", b"2"]]})
    await send({"type": "http.response.body", "body": b"hi"})


APP = Starlette(routes=[Route("/small", small, methods=["POST", "GET", "HEAD"]), Route("/stream", stream)])


async def exchange(protocol_class: type[HttpToolsProtocol], request: bytes, app: Any = APP) -> RecordingTransport:
    config = Config(app=app, http="httptools", lifespan="off", access_log=False)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Tue, 01 Dec 2026 12:00:00 GMT")]
    kwargs: dict[str, Any] = {"limits": LIMITS} if protocol_class is CollectorHttpProtocol else {}
    protocol = protocol_class(config, state, {}, _loop=asyncio.get_running_loop(), **kwargs)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    # Wait for the positive signal: every task the request started is done (the answer is written).
    while state.tasks:
        await asyncio.gather(*state.tasks)
    protocol.connection_lost(None)
    return transport


POST = b"POST /small HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbody"


@pytest.mark.parametrize(
    "request_bytes",
    [
        POST,
        b"GET /small HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
        b"HEAD /small HTTP/1.1\r\nHost: c\r\n\r\n",
        b"GET /missing HTTP/1.1\r\nHost: c\r\n\r\n",
        b"GET /small HTTP/1.0\r\n\r\n",
    ],
    ids=["post", "connection-close", "head", "404", "http-1.0"],
)
def test_a_response_is_one_write_with_uvicorns_bytes(request_bytes: bytes) -> None:
    ours = asyncio.run(exchange(CollectorHttpProtocol, request_bytes))
    theirs = asyncio.run(exchange(HttpToolsProtocol, request_bytes))
    assert len(ours.writes) == 1, ours.writes
    assert ours.writes[0] == b"".join(theirs.writes)
    assert ours.closed == theirs.closed


def test_pipelined_requests_each_get_one_write() -> None:
    ours = asyncio.run(exchange(CollectorHttpProtocol, POST * 3))
    assert len(ours.writes) == 3
    assert all(w.startswith(b"HTTP/1.1 202 Accepted\r\n") and w.endswith(b"\r\n\r\nok") for w in ours.writes)


def test_a_streamed_response_sends_its_head_with_the_first_chunk() -> None:
    request = b"GET /stream HTTP/1.1\r\nHost: c\r\n\r\n"
    ours = asyncio.run(exchange(CollectorHttpProtocol, request))
    theirs = asyncio.run(exchange(HttpToolsProtocol, request))
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert ours.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")  # the head and the first chunk: one write
    assert len(ours.writes) == len(theirs.writes) - 1


def test_headers_given_as_lists_are_rendered_too() -> None:
    request = b"GET / HTTP/1.1\r\nHost: c\r\n\r\n"
    ours = asyncio.run(exchange(CollectorHttpProtocol, request, raw_lists))
    theirs = asyncio.run(exchange(HttpToolsProtocol, request, raw_lists))
    assert ours.writes == [b"".join(theirs.writes)]


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(RuntimeError, match="Invalid HTTP header value"):
        render_head(200, ((b"x-a", b"one\r\nset-cookie: x"),), True, False)


def test_the_head_memo_is_bounded_and_keeps_no_long_heads() -> None:
    for i in range(HEADS_CACHED * 3):
        head_for(200, ((b"content-length", str(i).encode()),), True, False)
        assert len(_heads) <= HEADS_CACHED
    long_value = b"x" * MAX_CACHED_HEAD
    head = head_for(302, ((b"location", long_value), (b"content-length", b"0")), True, False)
    assert isinstance(head, Head) and long_value in head.data
    assert all(long_value not in h.data for h in _heads.values())
