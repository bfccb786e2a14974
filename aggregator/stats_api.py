"""The Stats API v2 JSON shape (Plausible's): parse a request body, render a result.

The HTTP endpoint (``POST /api/v2/query``, API-key auth) belongs to the
dashboards package; it only needs :func:`handle`::

    status, body = handle(querier, await request.json(), now=datetime.now(UTC))
    return JSONResponse(body, status_code=status)

Every error is a :class:`~aggregator.query.QueryError` naming the offending
key or value, answered 400.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aggregator.query import MAX_LIMIT, Querier, QueryError, QueryRequest, QueryResult
from aggregator.querybuild import Filter

_KEYS = {"site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "pagination", "include"}


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"{what} must be a list of strings")
    return tuple(value)


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise QueryError("date_range dates must be ISO strings")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise QueryError(f"date_range: {value!r} is not an ISO date") from None


def _filters(value: Any) -> tuple[Filter, ...]:
    if not isinstance(value, list):
        raise QueryError("filters must be a list")
    if len(value) == 2 and value[0] == "and" and isinstance(value[1], list):
        value = value[1]  # ["and", [...]] is what a plain list means anyway
    out = []
    for f in value:
        if not (isinstance(f, list) and len(f) == 3 and isinstance(f[0], str) and isinstance(f[1], str)):
            raise QueryError(f"filter {f!r} must be [operator, dimension, [values]]")
        values = f[2] if isinstance(f[2], list) else [f[2]]
        out.append(Filter(f[0], f[1], _strings([str(v) if isinstance(v, int) else v for v in values], "filter values")))
    return tuple(out)


def parse_stats_request(body: Any) -> QueryRequest:
    """Validate the v2 JSON shape and build a :class:`QueryRequest` (raises :class:`QueryError`)."""
    if not isinstance(body, dict):
        raise QueryError("the query must be a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise QueryError(f"unknown query key(s): {', '.join(unknown)}")
    site = body.get("site_id")
    if not isinstance(site, str) or not site:
        raise QueryError("site_id is required")
    raw_range = body.get("date_range", "30d")
    date_range: str | tuple[dt.date, dt.date]
    if isinstance(raw_range, str):
        date_range = raw_range
    elif isinstance(raw_range, list) and len(raw_range) == 2:
        date_range = (_date(raw_range[0]), _date(raw_range[1]))
    else:
        raise QueryError("date_range must be a name (day, 7d, 30d, month, 12mo, all) or [start, end]")
    order_by = []
    for item in body.get("order_by") or []:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise QueryError(f"order_by entry {item!r} must be [metric or dimension, asc|desc]")
        order_by.append((item[0], item[1]))
    pagination = body.get("pagination") or {}
    include = body.get("include") or {}
    if not isinstance(pagination, dict) or not isinstance(include, dict):
        raise QueryError("pagination and include must be objects")
    limit, offset = pagination.get("limit", MAX_LIMIT), pagination.get("offset", 0)
    if not isinstance(limit, int) or not isinstance(offset, int) or isinstance(limit, bool):
        raise QueryError("pagination limit and offset must be integers")
    comparisons = include.get("comparisons")
    mode = comparisons.get("mode") if isinstance(comparisons, dict) else comparisons
    request = QueryRequest(
        site_id=site,
        metrics=_strings(body.get("metrics"), "metrics"),
        date_range=date_range,
        dimensions=_strings(body.get("dimensions", []), "dimensions"),
        filters=_filters(body.get("filters", [])),
        order_by=tuple(order_by),
        limit=limit,
        offset=offset,
        total_rows=bool(include.get("total_rows", False)),
        comparison=mode if isinstance(mode, str) else None if mode is None else str(mode),
    )
    request.validate()
    return request


def render(result: QueryResult) -> dict[str, Any]:
    req = result.request
    results = []
    for row in result.rows:
        item: dict[str, Any] = {"dimensions": list(row.dimensions), "metrics": list(row.metrics)}
        if row.comparison is not None:
            item["comparison"] = {
                "dimensions": list(row.comparison.dimensions),
                "metrics": list(row.comparison.metrics),
                "change": list(row.comparison.change),
            }
        results.append(item)
    meta: dict[str, Any] = {
        "k_anonymity": result.k_anonymity,
        "folded_rows": result.folded_rows,
        "other_suppressed": result.other_suppressed,
        "rollup_days": result.rollup_days,
        "raw_days": result.raw_days,
        "visitors_note": "visitors are counted per UTC day; over a range, daily counts add up",
    }
    if req.total_rows:
        meta["total_rows"] = result.total_rows
    if result.comparison_range:
        meta["comparison_date_range"] = [d.isoformat() for d in result.comparison_range]
    if result.warnings:
        meta["warnings"] = list(result.warnings)
    include: dict[str, Any] = {"total_rows": req.total_rows}
    if req.comparison:
        include["comparisons"] = {"mode": req.comparison}
    query = {
        "site_id": req.site_id,
        "metrics": list(req.metrics),
        "date_range": [result.start.isoformat(), result.end.isoformat()],
        "dimensions": list(req.dimensions),
        "filters": [[f.op, f.dimension, list(f.values)] for f in req.filters],
        "order_by": [list(o) for o in req.order_by],
        "pagination": {"limit": req.limit, "offset": req.offset},
        "include": include,
    }
    return {"results": results, "meta": meta, "query": query}


def handle(querier: Querier, body: Any, now: dt.datetime) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for one Stats API call: 200 with the answer, or 400 naming the problem."""
    try:
        request = parse_stats_request(body)
        return 200, render(querier.run(request, now))
    except QueryError as exc:
        return 400, {"error": str(exc)}
