"""A cap on every request body: refused by its Content-Length, else counted while it streams in.

Everything the dashboards accept is small (login and admin forms, Stats API
queries), while Starlette's ``request.body()`` and form parser read whatever
arrives into memory before a handler can look at its size: a 200 MB query body
once raised the process's RSS by 380 MB. Over the cap the answer is 413 at
once, no more of the body is read, and the connection is closed (so uvicorn
does not go on reading the rest to find the next request). The dashboards must
be safe without nginx in front, so the cap is here, not only in the proxy.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes the cap; turned into a 413 by :class:`BodyCap`."""


class BodyCap:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, scope: Scope, send: Send) -> None:
        if scope["path"].startswith("/api/"):
            body = json.dumps({"error": f"request body larger than {self.max_bytes} bytes"}).encode()
            media = b"application/json"
        else:
            body = f"Request body larger than {self.max_bytes} bytes.\n".encode()
            media = b"text/plain; charset=utf-8"
        headers = [(b"content-type", media), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            # The server has checked it is a number; one that is too large is refused unread.
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, send)
                return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, send)
