"""Admin pages for traffic alerts: list, add, delete (each change audited and published to alerts.json)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.alerts import MAX_PER_DAY
from dashboards.alertrules import KIND_LABELS, AlertError
from dashboards.auth import Identity
from dashboards.services import services
from dashboards.web import page, render


def _page(request: Request, identity: Identity, *, message: str = "", status: int = 200) -> Response:
    svc = services(request)
    context = {
        "rules": svc.alert_rules.rules(),
        "state": svc.alert_rules.state(),
        "kinds": KIND_LABELS,
        "k": svc.queries.k_anonymity,
        "per_day": MAX_PER_DAY,
        "message": message,
        "today": svc.now().date().isoformat(),
    }
    return render(request, "admin_alerts.html", context, identity=identity, status=status)


@page(admin=True)
async def alerts_page(request: Request, identity: Identity) -> Response:
    services(request).audit.write(identity.user.name, "view", report="admin/alerts")
    return _page(request, identity)


@page(admin=True)
async def alerts_add(request: Request, identity: Identity) -> Response:
    svc = services(request)
    form = await request.form()
    site = str(form.get("site", ""))
    if site not in svc.sites():
        return _page(request, identity, message="Choose a site from the list.", status=400)
    try:
        rule = svc.alert_rules.add(
            site,
            str(form.get("kind", "")),
            str(form.get("threshold", "")),
            str(form.get("recipients", "")),
            svc.queries.k_anonymity,
            identity.user.name,
        )
    except AlertError as exc:
        return _page(request, identity, message=str(exc), status=400)
    detail = f"#{rule.id} {rule.kind} {rule.threshold} to {len(rule.recipients)} recipient(s)"
    svc.audit.write(identity.user.name, "alert_add", site=site, detail=detail)
    return RedirectResponse("/admin/alerts", status_code=303)


@page(admin=True)
async def alerts_delete(request: Request, identity: Identity) -> Response:
    svc = services(request)
    try:
        rule_id = int(str(request.path_params["rule_id"]))
    except ValueError:
        rule_id = -1
    rule = svc.alert_rules.delete(rule_id)
    if rule is not None:
        svc.audit.write(identity.user.name, "alert_delete", site=rule.site, detail=f"#{rule.id} {rule.kind}")
    return RedirectResponse("/admin/alerts", status_code=303)
