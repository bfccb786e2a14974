"""The annotations page of a site: everyone sees the notes; admins add and delete them (audited)."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dashboards.annotations import MAX_TEXT, AnnotationError
from dashboards.auth import Identity
from dashboards.services import services
from dashboards.sitepages import site_of
from dashboards.viewstate import EARLIEST, ViewStateError, custom_range
from dashboards.web import error, page, render


def _page(request: Request, identity: Identity, site: str, *, message: str = "", status: int = 200) -> Response:
    svc = services(request)
    today = svc.now().date()
    context = {"site": site, "notes": svc.annotations.notes(site), "message": message, "max_text": MAX_TEXT}
    context |= {"today": today, "earliest": EARLIEST}
    return render(request, "annotations.html", context, identity=identity, status=status)


@page()
async def notes_page(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    svc.audit.write(identity.user.name, "view", site=site, report="annotations")
    return _page(request, identity, site)


@page(admin=True)
async def notes_add(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    form = await request.form()
    raw_day = str(form.get("day", ""))
    try:
        day: dt.date = custom_range(raw_day, raw_day, svc.now().date(), "day/day")[0]
        note = svc.annotations.add(site, day, str(form.get("text", "")), identity.user.name)
    except (ViewStateError, AnnotationError) as exc:
        return _page(request, identity, site, message=str(exc), status=400)
    svc.audit.write(identity.user.name, "annotation_add", site=site, detail=f"{note.day}: {note.text}")
    return RedirectResponse(f"/sites/{site}/annotations", status_code=303)


@page(admin=True)
async def notes_delete(request: Request, identity: Identity) -> Response:
    svc = services(request)
    site = site_of(svc, request)
    if site is None:
        return error(request, 404, "No such site in the allowlist.", identity)
    try:
        note_id = int(str(request.path_params["note_id"]))
    except ValueError:
        note_id = -1
    note = svc.annotations.delete(site, note_id)
    if note is not None:
        svc.audit.write(identity.user.name, "annotation_delete", site=site, detail=f"{note.day}: {note.text}")
    return RedirectResponse(f"/sites/{site}/annotations", status_code=303)
