"""The baseline: a bare Starlette endpoint that reads the body and answers 202."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def event(request: Request) -> Response:
    await request.body()
    return PlainTextResponse("ok", 202)


def create_app() -> Starlette:
    return Starlette(routes=[Route("/api/event", event, methods=["POST"])])
