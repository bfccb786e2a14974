"""Shared page plumbing: rendering, the login/role/CSRF gate, safe redirects, the cookie rule."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dashboards import csrf
from dashboards.auth import Identity
from dashboards.services import services
from dashboards.viewstate import ViewStateError

Handler = Callable[[Request, Identity], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def render(
    request: Request, template: str, context: dict[str, Any], *, identity: Identity | None = None, status: int = 200
) -> HTMLResponse:
    svc = services(request)
    ctx = {
        "request": request,
        "identity": identity,
        "user": identity.user if identity else None,
        "csrf_field": csrf.FIELD,
        "csrf_token": identity.csrf if identity else "",
        "sites": svc.sites(),
        "shared": None,  # the name of the shared link a page is seen through (dashboards/sharepages.py)
        **context,
    }
    html = svc.templates.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status)


def safe_next(target: str | None) -> str:
    """Only a local path may be a post-login redirect target (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/sites"
    return target


_FORWARDED_HTTPS = re.compile(r"(?:^|[;,\s])proto=\"?https\"?(?:$|[;,\s])", re.IGNORECASE)


def came_over_https(request: HTTPConnection) -> bool:
    """Did the browser reach us over HTTPS: directly, or as a proxy in front says (X-Forwarded-Proto, Forwarded)?

    Believed from any peer, not only from trusted proxies, because it can only add
    the Secure attribute: a client that lies gets a cookie its own browser will not
    send back over plain HTTP. The shipped nginx site sets X-Forwarded-Proto.
    """
    if request.url.scheme == "https":
        return True
    protos = request.headers.get("x-forwarded-proto", "").lower().replace(" ", "").split(",")
    return "https" in protos or bool(_FORWARDED_HTTPS.search(request.headers.get("forwarded", "")))


def secure_cookies(request: HTTPConnection) -> bool:
    """ANALYTICS_DASHBOARDS_SECURE_COOKIES: `auto` (default) follows the request's scheme; 1/0 force it."""
    mode = services(request).settings.secure_cookies
    return mode == "always" or (mode == "auto" and came_over_https(request))


def error(
    request: Request, status: int, message: str, identity: Identity | None = None, back: tuple[str, str] | None = None
) -> HTMLResponse:
    """An error page; ``back``: (href, text) of the way out (default: the sites, for a logged-in user)."""
    if back is None and identity is not None:
        back = ("/sites", "Back to the sites")
    context = {"status": status, "message": message, "back": back}
    return render(request, "error.html", context, identity=identity, status=status)


def page(*, admin: bool = False) -> Callable[[Handler], Endpoint]:
    """Require a login (and the admin role); check the CSRF token on every POST; bad view URLs are a 400."""

    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            svc = services(request)
            identity = svc.auth.identify(request)
            if identity is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
            if admin and not identity.user.is_admin:
                return error(request, 403, "This page is for administrators.", identity)
            if request.method == "POST":
                form = await request.form()
                if not csrf.same_origin(request) or not csrf.valid(identity.csrf, form.get(csrf.FIELD)):
                    return error(
                        request, 403, "The form expired or came from elsewhere. Go back, reload, retry.", identity
                    )
            try:
                return await handler(request, identity)
            except ViewStateError as exc:
                # A hand-edited URL asking for dates the dashboards do not show: say which, never a 500.
                back = (request.url.path, "Back to the default view")
                return error(request, 400, f"This view cannot be shown: {exc}", identity, back)

        return endpoint

    return wrap
