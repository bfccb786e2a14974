"""Admin pages: users and roles, Stats API keys (shown once), the access audit log, the sites allowlist."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dashboards.auth import Identity
from dashboards.services import services
from dashboards.users import ROLES, UserError, generate_password
from dashboards.web import error, page, render

AUDIT_PAGE = 100
# Pages of the audit log an address can ask for: a plain decimal, at most this (SQLite's OFFSET is 64-bit;
# 10 million pages are a billion entries, beyond any log this writes).
MAX_AUDIT_PAGE = 10_000_000
_PAGE = re.compile(r"[0-9]{1,8}")


@page(admin=True)
async def admin_home(request: Request, identity: Identity) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


def _users_page(
    request: Request,
    identity: Identity,
    *,
    message: str = "",
    created: tuple[str, str] | None = None,
    status: int = 200,
) -> Response:
    svc = services(request)
    return render(
        request,
        "admin_users.html",
        {
            "users": svc.users.list(),
            "roles": ROLES,
            "message": message,
            "created": created,
        },
        identity=identity,
        status=status,
    )


@page(admin=True)
async def users_page(request: Request, identity: Identity) -> Response:
    services(request).audit.write(identity.user.name, "view", report="admin/users")
    return _users_page(request, identity)


@page(admin=True)
async def users_add(request: Request, identity: Identity) -> Response:
    svc = services(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()
    role = str(form.get("role", "viewer"))
    password = str(form.get("password", "")) or generate_password()
    try:
        user = await run_in_threadpool(svc.users.add, name, password, role)
    except UserError as exc:
        return _users_page(request, identity, message=str(exc), status=400)
    svc.audit.write(identity.user.name, "user_add", detail=f"{user.name} ({user.role})")
    shown = password if not form.get("password") else ""
    return _users_page(request, identity, created=(user.name, shown))


@page(admin=True)
async def users_change(request: Request, identity: Identity) -> Response:
    svc = services(request)
    form = await request.form()
    name = str(request.path_params["name"])
    action = str(form.get("action", ""))
    try:
        if name.lower() == identity.user.name.lower() and action in ("disable", "role"):
            raise UserError("you cannot disable or demote yourself (ask another admin)")
        if action == "disable":
            svc.users.set_disabled(name, True)
        elif action == "enable":
            svc.users.set_disabled(name, False)
        elif action == "role":
            svc.users.set_role(name, str(form.get("role", "")))
        else:
            raise UserError("unknown action")
    except UserError as exc:
        return _users_page(request, identity, message=str(exc), status=400)
    svc.audit.write(identity.user.name, f"user_{action}", detail=name)
    return RedirectResponse("/admin/users", status_code=303)


def _keys_page(request: Request, identity: Identity, *, token: str = "", status: int = 200) -> Response:
    return render(
        request,
        "admin_keys.html",
        {"keys": services(request).keys.list(), "token": token},
        identity=identity,
        status=status,
    )


@page(admin=True)
async def keys_page(request: Request, identity: Identity) -> Response:
    services(request).audit.write(identity.user.name, "view", report="admin/keys")
    return _keys_page(request, identity)


@page(admin=True)
async def keys_create(request: Request, identity: Identity) -> Response:
    svc = services(request)
    form = await request.form()
    key, token = svc.keys.create(str(form.get("name", "")), identity.user.name)
    svc.audit.write(identity.user.name, "apikey_create", detail=f"{key.name} ({key.prefix}…)")
    return _keys_page(request, identity, token=token)


@page(admin=True)
async def keys_revoke(request: Request, identity: Identity) -> Response:
    svc = services(request)
    try:
        key_id = int(request.path_params["key_id"])
    except ValueError:
        key_id = -1
    if svc.keys.revoke(key_id):
        svc.audit.write(identity.user.name, "apikey_revoke", detail=str(key_id))
    return RedirectResponse("/admin/keys", status_code=303)


@page(admin=True)
async def audit_page(request: Request, identity: Identity) -> Response:
    svc = services(request)
    raw_page = request.query_params.get("page") or "0"
    if not _PAGE.fullmatch(raw_page) or int(raw_page) > MAX_AUDIT_PAGE:
        return error(request, 400, f"The page number must be a whole number from 0 to {MAX_AUDIT_PAGE}.", identity)
    page_no = int(raw_page)
    chosen = {key: (request.query_params.get(key) or "")[:300] or None for key in ("actor", "action", "site")}
    svc.audit.write(identity.user.name, "view", report="admin/audit")
    entries = svc.audit.recent(AUDIT_PAGE, page_no * AUDIT_PAGE, **chosen)
    total = svc.audit.count(**chosen)
    pages = max(1, -(-total // AUDIT_PAGE))
    keep = {k: v for k, v in chosen.items() if v}

    def link(n: int) -> str:
        return "?" + urlencode({**keep, "page": n})

    return render(
        request,
        "admin_audit.html",
        {
            "entries": [(e, readable(e.detail)) for e in entries],
            "total": total,
            "first": page_no * AUDIT_PAGE + 1,
            "page_no": page_no,
            "pages": pages,
            "newer": link(page_no - 1) if page_no > 0 else None,
            "older": link(page_no + 1) if page_no + 1 < pages else None,
            "chosen": {k: v or "" for k, v in chosen.items()},
            "choices": svc.audit.choices(),
        },
        identity=identity,
    )


def readable(detail: str | None) -> str:
    """A view's query string as "name: value" pairs, decoded (it is stored as the query string asked)."""
    if not detail or "=" not in detail or " " in detail:
        return detail or ""
    try:
        pairs = parse_qsl(detail, keep_blank_values=True)
    except ValueError:
        return detail
    return " · ".join(f"{k}: {v}" for k, v in pairs) if pairs else detail


@page(admin=True)
async def sites_page(request: Request, identity: Identity) -> Response:
    svc = services(request)
    svc.audit.write(identity.user.name, "view", report="admin/sites")
    return render(
        request,
        "admin_sites.html",
        {
            "allowlist": svc.sites(),
            "k": svc.queries.k_anonymity,
            "raw_days": svc.queries.raw_retention_days,
            "aggregate_months": svc.queries.aggregate_retention_months,
        },
        identity=identity,
    )
