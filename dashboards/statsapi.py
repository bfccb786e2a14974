"""``POST /api/v2/query``: the Plausible Stats API v2 shape, authenticated with a Bearer API key.

A thin adapter: the aggregator validates and answers; errors come back as 400
JSON naming the bad metric, dimension or filter. Every call is audited.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dashboards.services import services


def _error(status: int, message: str) -> JSONResponse:
    headers = {"www-authenticate": 'Bearer realm="stats"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def query(request: Request) -> Response:
    svc = services(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = svc.keys.verify(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        return _error(401, "missing or invalid API key (Authorization: Bearer <key>)")
    # At most 64 KiB: dashboards.bodycap answers 413 for anything larger before it is read into memory.
    raw = await request.body()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return _error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    site = body.get("site_id")
    actor = f"api-key:{key.name}#{key.id}"
    if not isinstance(site, str) or site not in svc.sites():
        svc.audit.write(actor, "api_query_rejected", detail="unknown site_id")
        return _error(400, f"unknown site_id {site!r}: not in the sites allowlist")
    report = f"metrics={body.get('metrics')!s}; dimensions={body.get('dimensions')!s}"
    status, answer = await run_in_threadpool(svc.queries.api, body)
    if status != 200:
        message = str(answer.get("error"))
        svc.audit.write(actor, "api_query_rejected", site=site, report=report, detail=message)
        return _error(status, message)
    svc.audit.write(actor, "api_query", site=site, report=report)
    return JSONResponse(answer)
