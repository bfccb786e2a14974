"""Login and logout: argon2 check in a worker thread, failed attempts limited, all audited."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dashboards import csrf
from dashboards.auth import Identity
from dashboards.services import services
from dashboards.sessions import COOKIE
from dashboards.web import page, render, safe_next

LOGIN_CSRF_SECONDS = 1800


def _login_form(request: Request, *, message: str = "", status: int = 200, name: str = "") -> Response:
    token = csrf.new_token()
    response = render(
        request,
        "login.html",
        {
            "login_token": token,
            "message": message,
            "name": name,
            "next": safe_next(request.query_params.get("next")),
        },
        status=status,
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        max_age=LOGIN_CSRF_SECONDS,
        httponly=True,
        samesite="strict",
        secure=services(request).settings.dashboards_secure_cookies,
        path="/login",
    )
    return response


async def login_page(request: Request) -> Response:
    if services(request).auth.identify(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request)


async def login_submit(request: Request) -> Response:
    svc = services(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    if not csrf.same_origin(request) or not csrf.valid(request.cookies.get(csrf.LOGIN_COOKIE), form.get(csrf.FIELD)):
        return _login_form(request, message="The login form expired. Please try again.", status=403, name=name)
    address = svc.auth.client_address(request)
    if not svc.limiter.allowed(name, address):
        svc.audit.write(name or "(empty)", "login_blocked", detail="too many failed logins")
        return _login_form(
            request, message="Too many failed logins. Wait a few minutes and try again.", status=429, name=name
        )
    user = await run_in_threadpool(svc.users.authenticate, name, password) if name and password else None
    if user is None:
        svc.limiter.failed(name, address)
        svc.audit.write(name or "(empty)", "login_failed")
        # One message for unknown name, wrong password and disabled account: no account enumeration.
        return _login_form(request, message="Wrong user name or password.", status=401, name=name)
    svc.limiter.succeeded(name)
    cookie = svc.sessions.create(user)
    svc.audit.write(user.name, "login")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=svc.sessions.lifetime,
        httponly=True,
        samesite="lax",
        secure=svc.settings.dashboards_secure_cookies,
        path="/",
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
    return response


@page()
async def logout(request: Request, identity: Identity) -> Response:
    svc = services(request)
    svc.sessions.end(request.cookies.get(COOKIE))
    svc.audit.write(identity.user.name, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response
