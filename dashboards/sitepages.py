"""The sites list, a site's overview, and CSV export of any panel; every view and export is audited."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.csvsafe import to_csv
from aggregator.query import QueryError
from collector.siteconfig import Site
from dashboards import charting, charts, kpis, overview
from dashboards.auth import Identity
from dashboards.filterstate import OPS
from dashboards.panels import FILTERS, prop_key, site_panels
from dashboards.services import Services, services
from dashboards.viewstate import COMPARISONS, PERIODS, ViewState, allowed_intervals
from dashboards.web import error, page, render


@page()
async def sites_list(request: Request, identity: Identity) -> Response:
    svc = services(request)
    now = svc.now()
    state = ViewState.parse({"period": "7d"}, now.date())

    def load() -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        data_from = {site: svc.queries.first_day(site) for site in svc.sites()}
        for site in svc.sites():
            try:
                result = svc.queries.run(kpis.kpi_request(site, state), now, page=True)
                cards = kpis.kpis(result, kpis.compared(result, state, data_from[site]))
                out.append((site, cards[0] if cards else None))
            except QueryError:
                out.append((site, None))
        return out

    rows = await run_in_threadpool(load)
    svc.audit.write(identity.user.name, "view", report="sites")
    return render(request, "sites.html", {"rows": rows}, identity=identity)


def site_of(svc: Services, request: Request) -> str | None:
    site = str(request.path_params["site"])
    return site if site in svc.sites() else None


def site_config(svc: Services, site: str) -> Site | None:
    """The site's goals, property keys and funnels, as the query layer reads them: a panel offers only what
    its queries can answer (before the file exists the dashboards list the legacy sites, without goals)."""
    return svc.queries.site(site)


def filter_context(svc: Services, site: str, state: ViewState) -> dict[str, Any]:
    """What the filter editor (_filters.html) and the period controls need, on every page that has them."""
    config = site_config(svc, site)
    labels = {k: v[1] for k, v in FILTERS.items() if k != "goal" or (config is not None and config.goals)}
    for name in config.prop_keys if config else ():
        key = prop_key(name)
        if key is not None:
            labels[key] = f"Property {name}"
    return {
        "site": site,
        "state": state,
        "periods": PERIODS,
        "comparisons": COMPARISONS,
        "filter_labels": labels,
        "filter_ops": OPS,
        "goal_names": [g.name for g in config.goals] if config else [],
        "k": svc.queries.k_anonymity,
    }


def overview_context(svc: Services, site: str, state: ViewState, now: dt.datetime) -> dict[str, Any]:
    """Everything overview.html needs (the shared-link view renders the same template with it)."""
    notes = svc.annotations.for_chart(site, state.start, state.end)
    data = overview.page(svc.queries, site, state, now, notes, site_config(svc, site))
    return {
        **filter_context(svc, site, state),
        "intervals": allowed_intervals(state.start, state.end),
        "chart_metrics": state.chart_metrics,
        "chart_metric": charting.chart_metric(state),
        "raw_days": svc.queries.raw_retention_days,
        "aggregate_months": svc.queries.aggregate_retention_months,
        "bar": charts.bar,
        "kpis": data.kpis,
        "compared": data.compared,
        "points": data.points,
        "chart": data.chart,
        "panels": data.panels,
        "realtime": data.realtime,
        "warnings": data.warnings,
        "suppressed": data.suppressed,
        "annotations": data.annotations,
        "conversions": data.conversions,
        "filtered": data.filtered,
        "shared": None,
    }


@page()
async def site_overview(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    now = svc.now()
    state = ViewState.parse(request.query_params.multi_items(), now.date())
    if "add" in request.query_params:
        # The "add a filter" form: its fields are merged into the state; the canonical URL is what is kept.
        return RedirectResponse(request.url.path + state.query(), status_code=303)
    try:
        context = await run_in_threadpool(overview_context, svc, site, state, now)
    except QueryError as exc:
        return error(request, 400, f"This view cannot be computed: {exc}", identity)
    svc.audit.write(identity.user.name, "view", site=site, report="overview", detail=request.url.query or None)
    return render(request, "overview.html", context, identity=identity)


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@page()
async def export_csv(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    config = site_config(svc, site) if site is not None else None
    panels = site_panels(bool(config and config.goals), config.prop_keys if config else ())
    panel = next((p for p in panels if p.key == str(request.path_params["panel"])), None)
    if site is None or panel is None:
        return error(request, 404, "No such site or panel.", identity)
    now = svc.now()
    state = ViewState.parse(request.query_params.multi_items(), now.date())
    tab = panel.tab(state.tab(panel.key))
    try:
        header, rows = await run_in_threadpool(overview.export_rows, svc.queries, site, state, tab, now)
    except QueryError as exc:
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
