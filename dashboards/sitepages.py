"""The sites list, a site's overview, and CSV export of any panel; every view and export is audited."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from aggregator.csvsafe import to_csv
from dashboards import charts, fmt, overview
from dashboards.auth import Identity
from dashboards.panels import FILTERS, PANELS_BY_KEY
from dashboards.reports import ReportError
from dashboards.services import Services, services
from dashboards.viewstate import CHART_METRICS, PERIODS, ViewState, allowed_intervals
from dashboards.web import error, page, render


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@page()
async def sites_list(request: Request, identity: Identity) -> Response:
    svc = services(request)
    now = _now()
    state = ViewState.parse({"period": "7d"}, now.date())

    def load() -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for site in svc.sites():
            try:
                out.append((site, overview.kpis(svc.reports.run(overview.kpi_request(site, state), page=True))[0]))
            except ReportError:
                out.append((site, None))
        return out

    rows = await run_in_threadpool(load)
    svc.audit.write(identity.user.name, "view", report="sites")
    return render(request, "sites.html", {"rows": rows}, identity=identity)


def _site(svc: Services, request: Request) -> str | None:
    site = str(request.path_params["site"])
    return site if site in svc.sites() else None


def _overview_data(svc: Services, site: str, state: ViewState, now: dt.datetime) -> dict[str, Any]:
    data = overview.page(svc.reports, site, state, now)

    def fmt_metric(v: float) -> str:
        return fmt.metric(state.metric, v)

    chart = charts.line_chart(data.points, label=f"{CHART_METRICS[state.metric]} by {state.interval}", fmt=fmt_metric)
    return {
        "kpis": data.kpis,
        "points": data.points,
        "chart": chart,
        "panels": data.panels,
        "realtime": data.realtime,
        "warnings": data.warnings,
    }


@page()
async def site_overview(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = _site(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    now = _now()
    state = ViewState.parse(request.query_params, now.date())
    try:
        data = await run_in_threadpool(_overview_data, svc, site, state, now)
    except ReportError as exc:
        return error(request, 400, f"This view cannot be computed: {exc}", identity)
    svc.audit.write(identity.user.name, "view", site=site, report="overview", detail=request.url.query or None)
    return render(
        request,
        "overview.html",
        {
            "site": site,
            "state": state,
            "periods": PERIODS,
            "intervals": allowed_intervals(state.start, state.end),
            "chart_metrics": CHART_METRICS,
            "filter_labels": {k: v[1] for k, v in FILTERS.items()},
            "k": svc.reports.k_anonymity,
            "raw_days": svc.reports.raw_retention_days,
            "aggregate_months": svc.reports.aggregate_retention_months,
            "bar": charts.bar,
            **data,
        },
        identity=identity,
    )


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@page()
async def export_csv(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = _site(svc, request)
    panel = PANELS_BY_KEY.get(str(request.path_params["panel"]))
    if site is None or panel is None:
        return error(request, 404, "No such site or panel.", identity)
    now = _now()
    state = ViewState.parse(request.query_params, now.date())
    tab = panel.tab(state.tab(panel.key))
    try:
        header, rows = await run_in_threadpool(overview.export_rows, svc.reports, site, state, tab)
    except ReportError as exc:
        return error(request, 400, f"This export cannot be computed: {exc}", identity)
    svc.audit.write(
        identity.user.name, "export", site=site, report=f"{panel.key}/{tab.key}", detail=request.url.query or None
    )
    name = _UNSAFE_NAME.sub("_", f"{site}-{panel.key}-{tab.key}-{state.start}-{state.end}") + ".csv"
    return Response(
        to_csv(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
