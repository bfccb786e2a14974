"""The realtime page: visitors in the last 5 minutes, and today's top pages and sources.

The number is :meth:`aggregator.query.Querier.current_visitors` (under K it
says "fewer than K", like any row: a count over a few minutes is not a site
total); the two tables are ordinary k-anonymous queries for today, with the
query layer's ``(other)``. With the dashboards' script the region refreshes
itself every 30 seconds (it fetches this same page and takes the region from
it); without it, a Refresh link. Every view, refreshes included, is audited.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from aggregator.query import QueryError
from dashboards import charts, overview
from dashboards.auth import Identity
from dashboards.panels import Panel, Tab
from dashboards.services import services
from dashboards.sitepages import site_of
from dashboards.viewstate import ViewState
from dashboards.web import error, page, render

REFRESH_SECONDS = 30
PAGES = Panel("rt_pages", "Top pages today", (Tab("page", "Page", ("page",), ("visitors", "pageviews")),))
SOURCES = Panel("rt_sources", "Top sources today", (Tab("source", "Source", ("source",), ("visitors", "visits")),))


@page()
async def realtime_page(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    now = svc.now()
    state = ViewState.parse({"period": "day"}, now.date())

    def load() -> tuple[overview.Realtime, list[overview.PanelData]]:
        panels = [(PAGES, PAGES.tabs[0]), (SOURCES, SOURCES.tabs[0])]
        results = svc.queries.run_many([overview.panel_request(site, state, t) for _, t in panels], now, page=True)
        as_of = min((r.stale_as_of for r in results if r.stale_as_of is not None), default=None)
        data = [overview.panel(r, state, p, t) for r, (p, t) in zip(results, panels, strict=True)]
        return overview.realtime(svc.queries, site, now, as_of), data

    try:
        live, panels = await run_in_threadpool(load)
    except QueryError as exc:
        return error(request, 400, f"This view cannot be computed: {exc}", identity)
    svc.audit.write(identity.user.name, "view", site=site, report="realtime")
    context = {
        "site": site,
        "live": live,
        "panels": panels,
        "state": state,
        "now": now,
        "every": REFRESH_SECONDS,
        "k": svc.queries.k_anonymity,
        "bar": charts.bar,
    }
    return render(request, "realtime.html", context, identity=identity)
