"""Shared links: the admin pages that make and revoke them, and the read-only view they open.

``/share/<token>`` renders the overview template with the same queries as a
logged-in view (so K, ``(other)`` and the differencing rules are the query
layer's, unchanged), without the parts that are not for outsiders: no CSV
export, no realtime or annotation pages, no navigation, no admin link. The
link's cookie (after its password, if it has one) is scoped to the link's path
and proves only that the password was given: it opens no other page. Every
view and every refusal is written to the audit log as ``share:<name>#<id>``.
"""

from __future__ import annotations

import datetime as dt

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.query import QueryError
from dashboards import csrf
from dashboards.auth import Identity
from dashboards.ratelimit import Refused
from dashboards.services import Services, services
from dashboards.shares import SharedLink, ShareError
from dashboards.sitepages import overview_context
from dashboards.viewstate import ViewState, ViewStateError
from dashboards.web import error, page, render, secure_cookies

SHARE_COOKIE = "oc_share"
SHARE_HOURS = 12  # a password, once given, opens the link in this browser for at most this long
EXPIRY_CHOICES = {"": "never", "1": "in 1 day", "7": "in 7 days", "30": "in 30 days", "90": "in 90 days"}


def _signer(svc: Services) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(svc.settings.secret_key(), salt="dashboards.shared-link")


def _unlocked(svc: Services, request: Request, link: SharedLink) -> bool:
    if not link.has_password:
        return True
    cookie = request.cookies.get(SHARE_COOKIE)
    if not cookie or len(cookie) > 512:
        return False
    try:
        data = _signer(svc).loads(cookie, max_age=SHARE_HOURS * 3600)
    except (BadSignature, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("l") == link.id


def _open(request: Request) -> tuple[Services, SharedLink | None, Response | None]:
    """The link of the URL if it may be viewed now; else the refusal to send (404, 410, 429)."""
    svc = services(request)
    wait = svc.share_limiter.address(svc.auth.client_address(request))
    if wait is not None:
        return svc, None, _too_many(request, wait)
    link = svc.shares.find(str(request.path_params["token"]))
    if link is None or link.site not in svc.sites():
        svc.audit.write("(unknown link)", "share_refused", detail="no such link")
        return svc, None, error(request, 404, "This link does not exist.")
    status = link.status(svc.now())
    if status != "active":
        svc.audit.write(link.actor, "share_refused", site=link.site, detail=status)
        return svc, None, error(request, 410, f"This shared link was {status}: ask the site's team for a new one.")
    wait = svc.share_limiter.link(link.id)
    if wait is not None:
        return svc, None, _too_many(request, wait)
    return svc, link, None


def _too_many(request: Request, wait: int) -> Response:
    response = error(request, 429, "Too many views through shared links from here. Wait a little and try again.")
    response.headers["retry-after"] = str(wait)
    return response


def _password_form(request: Request, link: SharedLink, *, message: str = "", status: int = 401) -> Response:
    token = csrf.new_token()
    response = render(request, "share_password.html", {"link": link, "message": message, "form_token": token},
                      status=status)  # fmt: skip
    response.set_cookie(
        csrf.LOGIN_COOKIE, token, max_age=1800, httponly=True, samesite="strict", secure=secure_cookies(request),
        path=request.url.path,
    )  # fmt: skip
    return response


async def shared_view(request: Request) -> Response:
    svc, link, refusal = _open(request)
    if link is None:
        assert refusal is not None
        return refusal
    if not _unlocked(svc, request, link):
        return _password_form(request, link)
    now = svc.now()
    try:
        state = ViewState.parse(request.query_params.multi_items(), now.date())
        if "add" in request.query_params:
            return RedirectResponse(request.url.path + state.query(), status_code=303)
        context = await run_in_threadpool(overview_context, svc, link.site, state, now)
    except (ViewStateError, QueryError) as exc:
        return error(request, 400, f"This view cannot be shown: {exc}")
    context["shared"] = link.name
    svc.audit.write(link.actor, "view", site=link.site, report="shared overview", detail=request.url.query or None)
    svc.shares.used(link, now)
    return render(request, "overview.html", context)


async def shared_password(request: Request) -> Response:
    svc, link, refusal = _open(request)
    if link is None:
        assert refusal is not None
        return refusal
    form = await request.form()
    if not csrf.same_origin(request) or not csrf.valid(request.cookies.get(csrf.LOGIN_COOKIE), form.get(csrf.FIELD)):
        return _password_form(request, link, message="The form expired. Please try again.", status=403)
    attempt = svc.limiter.admit(f"share#{link.id}", svc.auth.client_address(request), None)
    if isinstance(attempt, Refused):
        svc.audit.write(link.actor, "share_password_blocked", site=link.site, detail=attempt.reason)
        response = _password_form(request, link, message="Too many attempts. Wait a few minutes.", status=429)
        response.headers["retry-after"] = str(attempt.retry_after)
        return response
    try:
        ok = await run_in_threadpool(svc.shares.check_password, link, str(form.get("password", "")))
    except BaseException:
        attempt.abandon()
        raise
    if not ok:
        attempt.failed()
        svc.audit.write(link.actor, "share_password_failed", site=link.site)
        return _password_form(request, link, message="Wrong password.")
    attempt.succeeded()
    max_age = SHARE_HOURS * 3600
    if link.expires_at is not None:
        max_age = max(1, min(max_age, link.expires_at - int(svc.now().timestamp())))
    response = RedirectResponse(request.url.path, status_code=303)
    response.set_cookie(
        SHARE_COOKIE, _signer(svc).dumps({"l": link.id}), max_age=max_age, httponly=True, samesite="lax",
        secure=secure_cookies(request), path=request.url.path,
    )  # fmt: skip
    return response


# --- admin -------------------------------------------------------------------------------------------------


def _admin_page(
    request: Request, identity: Identity, *, created: str = "", message: str = "", status: int = 200
) -> Response:
    svc = services(request)
    context = {
        "links": svc.shares.list(),
        "now": svc.now(),
        "created": created,
        "message": message,
        "expiry_choices": EXPIRY_CHOICES,
    }
    return render(request, "admin_shares.html", context, identity=identity, status=status)


@page(admin=True)
async def shares_page(request: Request, identity: Identity) -> Response:
    services(request).audit.write(identity.user.name, "view", report="admin/shares")
    return _admin_page(request, identity)


@page(admin=True)
async def shares_create(request: Request, identity: Identity) -> Response:
    svc = services(request)
    form = await request.form()
    site = str(form.get("site", ""))
    days = str(form.get("expires", ""))
    if site not in svc.sites() or days not in EXPIRY_CHOICES:
        return _admin_page(request, identity, message="Choose a site and an expiry from the lists.", status=400)
    now = svc.now()
    expires = now + dt.timedelta(days=int(days)) if days else None
    try:
        link, token = await run_in_threadpool(
            lambda: svc.shares.create(
                site, str(form.get("name", "")), identity.user.name, now,
                password=str(form.get("password", "")), expires_at=expires,
            )
        )  # fmt: skip
    except ShareError as exc:
        return _admin_page(request, identity, message=str(exc), status=400)
    detail = f"{link.name} ({'password' if link.has_password else 'no password'}, expires {days or 'never'})"
    svc.audit.write(identity.user.name, "share_create", site=site, detail=detail)
    return _admin_page(request, identity, created=f"{request.base_url}share/{token}")


@page(admin=True)
async def shares_revoke(request: Request, identity: Identity) -> Response:
    svc = services(request)
    try:
        link_id = int(str(request.path_params["link_id"]))
    except ValueError:
        link_id = -1
    link = svc.shares.revoke(link_id, svc.now())
    if link is not None:
        svc.audit.write(identity.user.name, "share_revoke", site=link.site, detail=link.actor)
    return RedirectResponse("/admin/shares", status_code=303)
