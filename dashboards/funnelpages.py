"""The funnel pages: a site's funnels, and one funnel's steps for the view's period and filters.

A funnel is 2 to 8 of the site's goals in order (the site configuration,
docs/goals.md); :meth:`aggregator.query.Querier.funnel` counts the visitors
reaching each step within a visit and decides which steps may be shown (each
step is a row: under K people, or a drop-off under K, and it and the steps
after it are "fewer than K"). The page takes the overview's view state from
the URL — period, custom range, filters — so a link from the overview shows
the funnel of the same segment; comparisons do not apply. Every view is audited.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator import fmt
from aggregator.funnels import FunnelResult
from aggregator.query import QueryError
from collector.siteconfig import Funnel
from dashboards.auth import Identity
from dashboards.funnelchart import funnel_svg
from dashboards.services import services
from dashboards.sitepages import filter_context, site_config, site_of
from dashboards.viewstate import ViewState
from dashboards.web import error, page, render


def funnel_path(site: str, name: str) -> str:
    return f"/sites/{quote(site, safe='')}/funnels/{quote(name, safe='')}"


@page()
async def funnels_list(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    state = ViewState.parse(request.query_params.multi_items(), svc.now().date())
    config = site_config(svc, site)
    funnels = [(f, funnel_path(site, f.name) + state.query()) for f in (config.funnels if config else ())]
    svc.audit.write(identity.user.name, "view", site=site, report="funnels")
    context = {**filter_context(svc, site, state), "funnels": funnels}
    return render(request, "funnels.html", context, identity=identity)


@page()
async def funnel_page(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    config = site_config(svc, site)
    funnel: Funnel | None = config.funnel(str(request.path_params["name"])) if config is not None else None
    if funnel is None:
        back = (f"/sites/{quote(site, safe='')}/funnels", "The site's funnels")
        return error(request, 404, "This site has no funnel of that name (any more).", identity, back)
    now = svc.now()
    state = ViewState.parse(request.query_params.multi_items(), now.date())
    if "add" in request.query_params:
        # The "add a filter" form: merged into the state, then the canonical URL (as on the overview).
        return RedirectResponse(request.url.path + state.query(), status_code=303)
    try:
        result: FunnelResult = await run_in_threadpool(
            svc.queries.funnel, site, (state.start, state.end), funnel.steps, now, state.query_filters()
        )
    except QueryError as exc:
        return error(request, 400, f"This funnel cannot be computed: {exc}", identity)
    svc.audit.write(
        identity.user.name, "view", site=site, report=f"funnel/{funnel.name}", detail=request.url.query or None
    )
    k = svc.queries.k_anonymity
    title = f"{funnel.name}: visitors at each step, {state.start} to {state.end}"
    context = {
        **filter_context(svc, site, state),
        "funnel": funnel,
        "result": result,
        "chart": funnel_svg(result.steps, k, title),
        "hidden": any(s.visitors is None for s in result.steps),
        "duration": fmt.duration,
        "compare_form": False,
        "overview": f"/sites/{quote(site, safe='')}{state.query()}",
    }
    return render(request, "funnel.html", context, identity=identity)
