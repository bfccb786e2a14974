"""The dashboards' ASGI app: ``create_app(settings)``, run with ``uvicorn --factory``."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from aggregator.settings import Settings as AggregatorSettings
from dashboards import (
    admin,
    alertpages,
    funnelpages,
    login,
    notepages,
    realtime,
    sharepages,
    siteconfig_admin,
    sitepages,
    statsapi,
)
from dashboards.bodycap import BodyCap
from dashboards.headers import SecurityHeaders
from dashboards.services import Services
from dashboards.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"


async def home(request: Request) -> Response:
    return RedirectResponse("/sites", status_code=303)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(
    settings: Settings | None = None,
    *,
    aggregator: AggregatorSettings | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> Starlette:
    """The app from the dashboards' and the aggregator's settings (unset: from the environment, here, once).

    ``clock`` is for in-process tests (a view "tomorrow").
    """
    settings = settings or Settings.from_env()
    if aggregator is None:
        # The dashboards' data dir wins: one setting, one place the lake lives.
        aggregator = dataclasses.replace(AggregatorSettings.from_env(), data_dir=settings.data_dir)
    svc = Services.build(settings, aggregator, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        yield {"svc": svc}

    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/sites", sitepages.sites_list),
        Route("/sites/{site}", sitepages.site_overview),
        Route("/sites/{site}/export/{panel}.csv", sitepages.export_csv),
        Route("/sites/{site}/realtime", realtime.realtime_page),
        Route("/sites/{site}/funnels", funnelpages.funnels_list),
        # A funnel's name may hold any character, "/" too (docs/goals.md): the rest of the path is the name.
        Route("/sites/{site}/funnels/{name:path}", funnelpages.funnel_page),
        Route("/sites/{site}/annotations", notepages.notes_page, methods=["GET"]),
        Route("/sites/{site}/annotations", notepages.notes_add, methods=["POST"]),
        Route("/sites/{site}/annotations/{note_id}/delete", notepages.notes_delete, methods=["POST"]),
        Route("/admin", admin.admin_home),
        Route("/admin/users", admin.users_page, methods=["GET"]),
        Route("/admin/users", admin.users_add, methods=["POST"]),
        Route("/admin/users/{name}", admin.users_change, methods=["POST"]),
        Route("/admin/keys", admin.keys_page, methods=["GET"]),
        Route("/admin/keys", admin.keys_create, methods=["POST"]),
        Route("/admin/keys/{key_id}/revoke", admin.keys_revoke, methods=["POST"]),
        Route("/admin/audit", admin.audit_page),
        Route("/admin/sites", admin.sites_page),
        # The site configuration: sites, events, property keys, goals, funnels (dashboards/siteconfig_admin.py).
        Route(siteconfig_admin.PATH, siteconfig_admin.siteconfig_page, methods=["GET"]),
        Route(siteconfig_admin.PATH, siteconfig_admin.siteconfig_change, methods=["POST"]),
        Route("/admin/alerts", alertpages.alerts_page, methods=["GET"]),
        Route("/admin/alerts", alertpages.alerts_add, methods=["POST"]),
        Route("/admin/alerts/{rule_id}/delete", alertpages.alerts_delete, methods=["POST"]),
        Route("/admin/shares", sharepages.shares_page, methods=["GET"]),
        Route("/admin/shares", sharepages.shares_create, methods=["POST"]),
        Route("/admin/shares/{link_id}/revoke", sharepages.shares_revoke, methods=["POST"]),
        Route("/share/{token}", sharepages.shared_view, methods=["GET"]),
        Route("/share/{token}", sharepages.shared_password, methods=["POST"]),
        Route("/api/v2/query", statsapi.query, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    # The body cap inside the headers middleware, so that its 413 carries the security headers too.
    middleware = [Middleware(SecurityHeaders), Middleware(BodyCap)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
