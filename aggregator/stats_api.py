"""The Stats API v2 (Plausible's ``POST /api/v2/query``): parse a JSON body, run it, render the answer.

This is the one path every caller takes — the dashboards' HTTP endpoint, the
``aggregator query`` command and the tests — :func:`answer`::

    status, body = answer(querier, json_body, now=datetime.now(UTC))

Errors are answered 400 with Plausible's messages where it has one (a JSON
pointer to the offending key for shape errors, its wording for refused
combinations); the message never repeats a filter value.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aggregator.dimensions import is_public
from aggregator.filters import FILTER_OPS, And, Expr, Filter, Not, Or
from aggregator.metrics import METRICS
from aggregator.periods import COMPARISONS, ComparisonMode, is_named
from aggregator.query import MAX_LIMIT, Querier, QueryError, QueryRequest, QueryResult

_KEYS = {"site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "pagination", "include"}
_INCLUDE = {"time_labels", "total_rows", "comparisons", "imports"}
_MODIFIER_OPS = set(FILTER_OPS)  # Plausible allows case_sensitive on is/contains only; RE2's (?i) is the same


def _fail(message: str) -> QueryError:
    return QueryError(message)


def _strings(value: Any, pointer: str) -> list[str]:
    if not isinstance(value, list):
        raise _fail(f"#/{pointer}: Type mismatch. Expected Array but got {type(value).__name__}.")
    if not all(isinstance(v, str) for v in value):
        raise _fail(f"#/{pointer}: Expected a list of strings.")
    return value


def _metrics(value: Any) -> tuple[str, ...]:
    metrics = _strings(value, "metrics")
    if not metrics:
        raise _fail("#/metrics: Expected a minimum of 1 items but got 0.")
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise _fail(f"#/metrics/{i}: Invalid metric {json.dumps(m)}")
    if len(set(metrics)) != len(metrics):
        raise _fail("#/metrics: Expected items to be unique but they were not.")
    return tuple(metrics)


def _dimensions(value: Any, date_range: tuple[dt.date, dt.date] | None) -> tuple[str, ...]:
    dims = _strings(value, "dimensions")
    out = []
    for i, d in enumerate(dims):
        if d == "time":
            d = _time_for(date_range)
        elif not is_public(d):
            raise _fail(f"#/dimensions/{i}: Invalid dimension {json.dumps(d)}")
        out.append(d)
    if len(set(out)) != len(out):
        raise _fail("#/dimensions: Expected items to be unique but they were not.")
    return tuple(out)


def _time_for(date_range: tuple[dt.date, dt.date] | None) -> str:
    # Plausible's choice for "time": hours up to two days, days up to 40, weeks up to 52, then months.
    if date_range is None:
        return "time:day"
    days = (date_range[1] - date_range[0]).days + 1
    if days <= 2:
        return "time:hour"
    if days <= 40:
        return "time:day"
    return "time:week" if days <= 52 * 7 else "time:month"


def _filter(value: Any, pointer: str, depth: int = 0) -> Expr:
    bad = _fail(f"#/{pointer}: Invalid filter {json.dumps(value, ensure_ascii=False)[:200]}")
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise bad
    head = value[0]
    if head in ("and", "or"):
        if len(value) != 2 or not isinstance(value[1], list) or not value[1]:
            raise bad
        children = tuple(_filter(c, pointer, depth + 1) for c in value[1])
        return And(children) if head == "and" else Or(children)
    if head == "not":
        if len(value) != 2:
            raise bad
        return Not(_filter(value[1], pointer, depth + 1))
    if head in ("has_done", "has_not_done"):
        raise _fail(f"#/{pointer}: behavioural filters ({head}) are not supported")
    if head not in FILTER_OPS or len(value) not in (3, 4) or not isinstance(value[1], str):
        raise bad
    dim = value[1]
    if not is_public(dim) or dim.startswith("time:"):
        raise bad
    clauses = value[2]
    if not isinstance(clauses, list) or not all(isinstance(c, str | int) and not isinstance(c, bool) for c in clauses):
        raise bad
    case_sensitive = True
    if len(value) == 4:
        mods = value[3]
        if not isinstance(mods, dict) or set(mods) - {"case_sensitive"} or head not in _MODIFIER_OPS:
            raise bad
        flag = mods.get("case_sensitive", True)
        if not isinstance(flag, bool):
            raise bad
        case_sensitive = flag
    return Filter(head, dim, tuple(str(c) for c in clauses), case_sensitive)


def _date_range(value: Any) -> str | tuple[dt.date, dt.date] | tuple[dt.datetime, dt.datetime]:
    invalid = _fail(f"#/date_range: Invalid date range {json.dumps(value, ensure_ascii=False)[:100]}")
    if isinstance(value, str):
        if not is_named(value):
            raise invalid
        return value
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise invalid
    a, b = value
    if len(a) == 10 and len(b) == 10:
        try:
            return dt.date.fromisoformat(a), dt.date.fromisoformat(b)
        except ValueError:
            raise invalid from None
    try:
        start, end = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)
    except ValueError:
        raise invalid from None
    if start.tzinfo is None or end.tzinfo is None:
        raise _fail(f"Invalid date_range {json.dumps(value)}: datetimes need an offset (Z or +hh:mm)")
    return start.replace(microsecond=0), end.replace(microsecond=0)


def parse(body: Any) -> QueryRequest:
    """Validate the v2 JSON shape and build a :class:`QueryRequest` (raises :class:`QueryError`)."""
    if not isinstance(body, dict):
        raise _fail("#: the query must be a JSON object")
    for key in sorted(set(body) - _KEYS):
        raise _fail(f"#/{key}: Schema does not allow additional properties.")
    site = body.get("site_id")
    if not isinstance(site, str) or not site:
        raise _fail("#: Required property site_id was not present.")
    if "metrics" not in body:
        raise _fail("#: Required property metrics was not present.")
    date_range = _date_range(body.get("date_range", "30d"))
    fixed = (
        (date_range[0], date_range[1])
        if isinstance(date_range, tuple) and not isinstance(date_range[0], dt.datetime)
        else None
    )
    filters_raw = body.get("filters", [])
    if not isinstance(filters_raw, list):
        raise _fail(f"#/filters: Type mismatch. Expected Array but got {type(filters_raw).__name__}.")
    filters = tuple(_filter(f, f"filters/{i}") for i, f in enumerate(filters_raw))
    order_by = []
    for i, item in enumerate(body.get("order_by") or []):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise _fail(f"#/order_by/{i}: Invalid value in order_by {json.dumps(item)[:100]}")
        order_by.append((item[0], item[1]))
    pagination = body.get("pagination") or {}
    include = body.get("include") or {}
    if not isinstance(include, dict):
        raise _fail(f"#/include: Type mismatch. Expected Object but got {type(include).__name__}.")
    if not isinstance(pagination, dict):
        raise _fail(f"#/pagination: Type mismatch. Expected Object but got {type(pagination).__name__}.")
    for key in sorted(set(include) - _INCLUDE):
        raise _fail(f"#/include/{key}: Schema does not allow additional properties.")
    limit, offset = pagination.get("limit", MAX_LIMIT), pagination.get("offset", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or not isinstance(offset, int) or isinstance(offset, bool):
        raise _fail("#/pagination: limit and offset must be integers")
    if limit > MAX_LIMIT:
        raise _fail(f"#/pagination/limit: Expected the value to be <= {MAX_LIMIT}")
    if limit < 1:
        raise _fail("#/pagination/limit: Expected the value to be >= 1")
    if offset < 0:
        raise _fail("#/pagination/offset: Expected the value to be >= 0")
    mode, custom, match = _comparisons(include.get("comparisons"))
    request = QueryRequest(
        site_id=site,
        metrics=_metrics(body.get("metrics")),
        date_range=date_range,
        dimensions=_dimensions(body.get("dimensions", []), fixed),
        filters=filters,
        order_by=tuple(order_by),
        limit=limit,
        offset=offset,
        total_rows=include.get("total_rows") is True,
        comparison=mode,
        comparison_range=custom,
        match_day_of_week=match,
        time_labels=include.get("time_labels") is True,
    )
    request.validate()
    return request


def _comparisons(value: Any) -> tuple[ComparisonMode | None, tuple[dt.date, dt.date] | None, bool]:
    if value is None or value is False:
        return None, None, False
    bad = _fail("#/include/comparisons: Expected exactly one of the schemata to match, but none of them did.")
    if not isinstance(value, dict) or value.get("mode") not in COMPARISONS:
        raise bad
    mode: ComparisonMode = value["mode"]
    match = value.get("match_day_of_week", False)
    if not isinstance(match, bool) or set(value) - {"mode", "date_range", "match_day_of_week"}:
        raise bad
    custom = None
    if mode == "custom":
        if "date_range" not in value:
            raise bad
        rng = _date_range(value["date_range"])
        if not isinstance(rng, tuple) or isinstance(rng[0], dt.datetime):
            raise bad
        custom = (rng[0], rng[1])
    elif "date_range" in value:
        raise bad
    return mode, custom, match


def _filter_json(e: Expr) -> list[Any]:
    if isinstance(e, Filter):
        out: list[Any] = [e.op, e.dimension, list(e.values)]
        if not e.case_sensitive:
            out.append({"case_sensitive": False})
        return out
    if isinstance(e, Not):
        return ["not", _filter_json(e.child)]
    return ["and" if isinstance(e, And) else "or", [_filter_json(c) for c in e.children]]


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
    if result.suppressed:
        meta["suppressed"] = result.suppressed
    if result.suppressed_buckets:
        meta["suppressed_time_buckets"] = list(result.suppressed_buckets)
    if req.total_rows:
        meta["total_rows"] = result.total_rows
    if req.time_labels:
        meta["time_labels"] = list(result.time_labels)
    if result.comparison_range:
        meta["comparison_date_range"] = [d.isoformat() for d in result.comparison_range]
    if result.warnings:
        meta["warnings"] = list(result.warnings)
    include: dict[str, Any] = {}
    if req.total_rows:
        include["total_rows"] = True
    if req.time_labels:
        include["time_labels"] = True
    if req.comparison:
        comparisons: dict[str, Any] = {"mode": req.comparison}
        if req.comparison_range:
            comparisons["date_range"] = [d.isoformat() for d in req.comparison_range]
        if req.match_day_of_week:
            comparisons["match_day_of_week"] = True
        include["comparisons"] = comparisons
    if isinstance(req.date_range, tuple) and isinstance(req.date_range[0], dt.datetime):
        echoed = [d.isoformat() for d in req.date_range]
    else:
        echoed = [result.start.isoformat(), result.end.isoformat()]
    query = {
        "site_id": req.site_id,
        "metrics": list(req.metrics),
        "date_range": echoed,
        "dimensions": list(req.dimensions),
        "filters": [_filter_json(f) for f in req.filters],
        "order_by": [list(o) for o in req.order_by],
        "pagination": {"limit": req.limit, "offset": req.offset},
        "include": include,
    }
    return {"results": results, "meta": meta, "query": query}


_FUNNEL_KEYS = {"site_id", "date_range", "steps", "funnel", "filters"}


def funnel_answer(querier: Querier, body: Any, now: dt.datetime) -> tuple[int, dict[str, Any]]:
    """A funnel (our extension of the v2 API: Plausible has none): ``steps`` (goal names) or a ``funnel`` name.

    ``{"site_id": ..., "date_range": "30d", "funnel": "Ordering"}`` or ``"steps": ["Visit /pricing", "Order"]``,
    optional ``filters`` as in a query. Steps under K are ``null`` (PRIVACY.md rule 5).
    """
    try:
        if not isinstance(body, dict):
            raise _fail("#: the query must be a JSON object")
        for key in sorted(set(body) - _FUNNEL_KEYS):
            raise _fail(f"#/{key}: Schema does not allow additional properties.")
        site = body.get("site_id")
        if not isinstance(site, str) or not site:
            raise _fail("#: Required property site_id was not present.")
        date_range = _date_range(body.get("date_range", "30d"))
        raw = body.get("filters", [])
        if not isinstance(raw, list):
            raise _fail("#/filters: Type mismatch. Expected Array")
        filters = tuple(_filter(f, f"filters/{i}") for i, f in enumerate(raw))
        if "funnel" in body:
            config = querier.config().site(site)
            funnel = config.funnel(body["funnel"]) if config is not None and isinstance(body["funnel"], str) else None
            if funnel is None:
                raise _fail(f"#/funnel: no funnel {json.dumps(body['funnel'])[:100]} in this site's configuration")
            steps = funnel.steps
        else:
            steps = tuple(_strings(body.get("steps"), "steps"))
        result = querier.funnel(site, date_range, steps, now, filters)
    except QueryError as exc:
        return 400, {"error": str(exc)}
    return 200, {
        "steps": [
            {
                "name": s.name,
                "visitors": s.visitors,
                "dropoff": s.dropoff,
                "conversion_rate": s.conversion_rate,
                "conversion_rate_step": s.conversion_rate_step,
                "median_seconds_from_previous": s.median_seconds,
            }
            for s in result.steps
        ],  # fmt: skip
        "meta": {"k_anonymity": result.k_anonymity, "warnings": result.warnings},
        "query": {
            "site_id": site,
            "date_range": [result.start.isoformat(), result.end.isoformat()],
            "steps": list(steps),
            "filters": [_filter_json(f) for f in filters],
        },  # fmt: skip
    }


def answer(querier: Querier, body: Any, now: dt.datetime, *, max_stale: float = 0.0) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for one Stats API call: 200 with the answer, or 400 naming the problem."""
    try:
        request = parse(body)
        return 200, render(querier.run(request, now, max_stale=max_stale))
    except QueryError as exc:
        return 400, {"error": str(exc)}
