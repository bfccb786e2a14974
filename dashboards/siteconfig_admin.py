"""The site configuration page: admins see and change sites, custom events, property keys, goals and funnels.

Every change is one atomic save of the whole file (collector.siteconfig.save),
made only if nobody changed the file since the page was shown (its revision
travels in every form), validated by the same rules every reader applies, and
written to the audit log with what changed. The collectors pick it up within
seconds (their watcher), as do the other dashboards workers and the queries.
With ``ANALYTICS_SITE_CONFIG_READONLY=1`` (configuration management owns the
file) the page shows it and offers no change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from collector.siteconfig import (
    FUNNEL_STEPS,
    Funnel,
    Goal,
    Site,
    SiteConfig,
    SiteConfigConflict,
    SiteConfigError,
    from_dict,
    save,
)
from dashboards.auth import Identity
from dashboards.services import services
from dashboards.web import page, render

PATH = "/admin/siteconfig"
# Form fields are capped before anything parses them (the file's own limits apply after).
_FIELD = 2000


def _text(form: FormData, name: str) -> str:
    return str(form.get(name, ""))[:_FIELD].strip()


def _lines(form: FormData, name: str) -> list[str]:
    return [line.strip() for line in str(form.get(name, ""))[: 40 * _FIELD].splitlines() if line.strip()]


def _show(request: Request, identity: Identity, message: str = "", status: int = 200) -> Response:
    svc = services(request)
    config = svc.site_config()
    return render(
        request,
        "admin_siteconfig.html",
        {
            "config": config,
            "path": str(svc.settings.site_config_path),
            "exists": svc.settings.site_config_path.exists(),
            "readonly": svc.settings.site_config_readonly,
            "load_error": svc.siteconfig.last_error,
            "message": message,
            "steps": range(FUNNEL_STEPS[1]),
            "min_steps": FUNNEL_STEPS[0],
        },
        identity=identity,
        status=status,
    )


@page(admin=True)
async def siteconfig_page(request: Request, identity: Identity) -> Response:
    services(request).audit.write(identity.user.name, "view", report="admin/siteconfig")
    return _show(request, identity)


def _site(config: SiteConfig, domain: str) -> Site:
    site = config.site(domain)
    if site is None:
        raise SiteConfigError(f"there is no site {domain!r} (anymore)")
    return site


def _goal(form: FormData) -> Goal:
    name = _text(form, "name")
    raw: dict[str, Any] = {"name": name} if name else {}
    if _text(form, "kind") == "page":
        raw["page"] = _text(form, "page")
    else:
        raw["event"] = _text(form, "event")
        key, value = _text(form, "prop_key"), _text(form, "prop_value")
        if key or value:
            raw["props"] = {key: value}
    # Parsed by the file's own rules: one source of truth for what a goal is.
    parsed = from_dict({"sites": [{"domain": "x.example", "goals": [raw]}]})
    return parsed.sites[0].goals[0]


def _change(config: SiteConfig, form: FormData) -> tuple[SiteConfig, str, str]:
    """(the new configuration, the site it concerns, what changed in words) for one form."""
    action, domain = _text(form, "action"), _text(form, "site").lower()
    if action == "add_site":
        if config.site(domain) is not None:
            raise SiteConfigError(f"{domain!r} is configured already")
        return config.replace_site(Site(domain)), domain, "site added"
    if action == "remove_site":
        site = _site(config, domain)
        if _text(form, "confirm") != site.domain:
            raise SiteConfigError("type the site's domain to confirm removing it")
        return config.remove_site(site.domain), site.domain, "site removed"
    site = _site(config, domain)
    edits: dict[str, Callable[[], tuple[Site, str]]] = {
        "lists": lambda: (
            replace(
                site,
                declared_events=tuple(_lines(form, "custom_events")),
                declared_prop_keys=tuple(_lines(form, "prop_keys")),
            ),
            "custom events and property keys set",
        ),  # fmt: skip
        "add_goal": lambda: _with_goal(site, _goal(form)),
        "remove_goal": lambda: _without_goal(site, _text(form, "goal")),
        "add_funnel": lambda: _with_funnel(site, form),
        "remove_funnel": lambda: (
            replace(site, funnels=tuple(f for f in site.funnels if f.name != _text(form, "funnel"))),
            f"funnel removed: {_text(form, 'funnel')}",
        ),
    }
    if action not in edits:
        raise SiteConfigError("unknown change")
    new_site, what = edits[action]()
    return config.replace_site(new_site), site.domain, what


def _with_goal(site: Site, goal: Goal) -> tuple[Site, str]:
    return replace(site, goals=(*site.goals, goal)), f"goal added: {goal.name}"


def _without_goal(site: Site, name: str) -> tuple[Site, str]:
    users = [f.name for f in site.funnels if name in f.steps]
    if users:
        raise SiteConfigError(f"the goal {name!r} is a step of the funnel {users[0]!r}: remove or change that first")
    return replace(site, goals=tuple(g for g in site.goals if g.name != name)), f"goal removed: {name}"


def _with_funnel(site: Site, form: FormData) -> tuple[Site, str]:
    steps = tuple(s for s in (_text(form, f"step{i}") for i in range(FUNNEL_STEPS[1])) if s)
    funnel = Funnel(_text(form, "funnel"), steps)
    return replace(site, funnels=(*site.funnels, funnel)), f"funnel added: {funnel.name} ({' > '.join(steps)})"


@page(admin=True)
async def siteconfig_change(request: Request, identity: Identity) -> Response:
    svc = services(request)
    if svc.settings.site_config_readonly:
        return _show(request, identity, "This file is managed by configuration management: change it there.", 403)
    form = await request.form()
    config = svc.site_config()
    try:
        new, site, what = _change(config, form)
        saved = await run_in_threadpool(save, new, svc.settings.site_config_path, _text(form, "revision"))
    except SiteConfigConflict:
        message = "The configuration changed since this page was shown (another admin, or a deploy). Nothing was saved."
        return _show(request, identity, message, 409)
    except SiteConfigError as exc:
        return _show(request, identity, f"Not saved: {exc}", 400)
    svc.audit.write(identity.user.name, "siteconfig_change", site=site, report="admin/siteconfig",
                    detail=f"{what} (revision {saved.revision})")  # fmt: skip
    svc.siteconfig.check()
    return RedirectResponse(PATH + "#site-" + site, status_code=303)
