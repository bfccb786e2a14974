"""Login and logout: limits admitted before the argon2 check, the check in a worker thread, all audited.

The order of a login POST: CSRF token, then the failed-login limits and a
hashing slot (:mod:`dashboards.ratelimit`; refused attempts get 429 with
Retry-After and cost no hash), then the password check. The audit log names the
account a failed login was aimed at only if it exists; a typed name that is not
a user is never stored (PRIVACY.md rule 10): it is often an e-mail address.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dashboards import csrf
from dashboards.auth import Identity
from dashboards.ratelimit import NAME_CAP, Refused, account_key
from dashboards.services import Services, services
from dashboards.sessions import COOKIE, DEVICE_COOKIE
from dashboards.web import page, render, safe_next, secure_cookies

LOGIN_CSRF_SECONDS = 1800
UNKNOWN_USER = "(unknown user)"
WRONG = "Wrong user name or password."
REFUSED_MESSAGES = {
    "busy": "Too many logins at this moment. Try again in a few seconds.",
    "limit": "Too many failed logins. Wait a few minutes and try again.",
}
REFUSED_DETAILS = {
    "address": "too many failed logins from this address",
    "account": "too many failed logins for this account from unknown browsers",
    "device": "too many failed logins from this browser",
    "busy": "all password checks busy",
}


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
        secure=secure_cookies(request),
        path="/login",
    )
    return response


async def login_page(request: Request) -> Response:
    if services(request).auth.identify(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request)


def _actor(svc: Services, name: str) -> str:
    """Who a login attempt is recorded as: the existing account (its own spelling), else never the typed text."""
    user = svc.users.get(name) if name else None
    return user.name if user is not None else UNKNOWN_USER


def _refused(request: Request, svc: Services, name: str, refused: Refused) -> Response:
    action = "login_busy" if refused.reason == "busy" else "login_blocked"
    svc.audit.write(_actor(svc, name), action, detail=REFUSED_DETAILS[refused.reason])
    message = REFUSED_MESSAGES["busy" if refused.reason == "busy" else "limit"]
    response = _login_form(request, message=message, status=429, name=name)
    response.headers["retry-after"] = str(refused.retry_after)
    return response


async def login_submit(request: Request) -> Response:
    svc = services(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()[:NAME_CAP]
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    if not csrf.same_origin(request) or not csrf.valid(request.cookies.get(csrf.LOGIN_COOKIE), form.get(csrf.FIELD)):
        return _login_form(request, message="The login form expired. Please try again.", status=403, name=name)
    if not name or not password:
        # Nothing to check, so no hash and nothing counted: an empty field cannot guess a password.
        svc.audit.write(_actor(svc, name), "login_failed", detail="empty name or password")
        return _login_form(request, message=WRONG, status=401, name=name)
    account = account_key(name)
    device = svc.devices.device(request.cookies.get(DEVICE_COOKIE), account)
    # Admitted (places reserved, a hashing slot taken) before anything is awaited: no race with other attempts.
    attempt = svc.limiter.admit(account, svc.auth.client_address(request), device)
    if isinstance(attempt, Refused):
        return _refused(request, svc, name, attempt)
    try:
        user = await run_in_threadpool(svc.users.authenticate, name, password)
    except BaseException:
        attempt.abandon()  # no verdict: give the places and the slot back
        raise
    if user is None:
        attempt.failed()
        svc.audit.write(_actor(svc, name), "login_failed", detail="known browser" if device else None)
        # One message for unknown name, wrong password and disabled account: no account enumeration.
        return _login_form(request, message=WRONG, status=401, name=name)
    attempt.succeeded()
    return _logged_in(request, svc, user.name, svc.sessions.create(user), target)


def _logged_in(request: Request, svc: Services, name: str, session_cookie: str, target: str) -> Response:
    svc.audit.write(name, "login")
    secure = secure_cookies(request)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, session_cookie, max_age=svc.sessions.lifetime, httponly=True, samesite="lax", secure=secure, path="/"
    )
    # This browser now counts as known to the account: strangers' failures no longer lock it out.
    response.set_cookie(
        DEVICE_COOKIE,
        svc.devices.issue(account_key(name)),
        max_age=svc.devices.lifetime,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/login",
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/login", secure=secure)
    return response


@page()
async def logout(request: Request, identity: Identity) -> Response:
    svc = services(request)
    svc.sessions.end(request.cookies.get(COOKIE))
    svc.audit.write(identity.user.name, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request))
    return response
