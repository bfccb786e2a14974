"""An ASGI app in this process behind a plain (sync) httpx client: for pages, tables and input cases.

No server process to start, the same app a server would run. The app runs in
an event loop of its own thread, its lifespan entered once, as uvicorn would;
requests go through httpx's ASGI transport with a chosen client address. Real
processes stay for durability, browsers and servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import httpx
from starlette.applications import Starlette


class InProcess(httpx.BaseTransport):
    def __init__(self, app: Starlette, client: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._lifespan = app.router.lifespan_context(app)
        state: MutableMapping[str, Any] = self._call(self._lifespan.__aenter__()) or {}

        async def with_state(scope: dict[str, Any], receive: Any, send: Any) -> None:
            # What a server does with the lifespan's state: a copy in every request's scope.
            await app({**scope, "state": dict(state)}, receive, send)

        self._inner = httpx.ASGITransport(app=with_state, client=client)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            # A sync client's body (bytes or a generator), handed to the app chunk by chunk as it asks:
            # an app that stops reading (a 413) leaves the rest unread, as over a socket.
            request.stream = _Chunks(request.stream)

        async def send() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            # The bytes as sent (a gzip body stays gzip): the client decodes them once, as over a socket.
            assert isinstance(response.stream, httpx.AsyncByteStream)
            body = b"".join([part async for part in response.stream])
            return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body))

        response: httpx.Response = self._call(send())
        return response

    def close(self) -> None:
        if self.loop.is_closed():
            return  # closed already (a client closes its transport; so may its owner)
        self._call(self._lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._stream:
            yield chunk


@contextlib.contextmanager
def client_of_app(app: Starlette, client: tuple[str, int] = ("127.0.0.1", 40000)) -> Iterator[httpx.Client]:
    """A client of ``app`` (lifespan entered for the duration), requests arriving from ``client``."""
    with httpx.Client(transport=InProcess(app, client), base_url="http://testserver", timeout=60) as http:
        yield http
