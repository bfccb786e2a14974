"""Reading the configuration: strict validation, every error naming its place."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from collector.siteconfig.model import (
    BUILTIN_EVENTS,
    FORMAT,
    FUNNEL_STEPS,
    MAX_CUSTOM_EVENTS,
    MAX_FUNNELS,
    MAX_GOALS,
    MAX_KEY,
    MAX_NAME,
    MAX_PAGE,
    MAX_PROP_KEYS,
    MAX_SITES,
    MAX_VALUE,
    Funnel,
    Goal,
    Site,
    SiteConfig,
    SiteConfigError,
    clean_text,
    site_key,
)


def _keys(obj: Any, where: str, allowed: set[str], required: Collection[str] = ()) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SiteConfigError(f"{where}: must be an object")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        # A misspelt key would otherwise do nothing, silently.
        raise SiteConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(set(required) - set(obj))
    if missing:
        raise SiteConfigError(f"{where}: missing {missing[0]!r}")
    return obj


def _list(obj: Any, where: str, limit: int) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise SiteConfigError(f"{where}: must be a list")
    if len(obj) > limit:
        raise SiteConfigError(f"{where}: more than {limit} entries")
    return obj


def _unique(values: list[str], where: str, what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise SiteConfigError(f"{where}: {what} {v!r} appears twice")
        seen.add(v)
    return tuple(values)


_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9](?:[a-z0-9-]{0,62}))*")


def _domain(value: Any, where: str) -> str:
    domain = clean_text(value, where, 253).lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise SiteConfigError(f"{where}: not a host name (letters, digits, '-' and '.')")
    return domain


def _goal(obj: Any, where: str) -> Goal:
    g = _keys(obj, where, {"page", "event", "props", "name"})
    if ("page" in g) == ("event" in g):
        raise SiteConfigError(f"{where}: a goal has either 'page' (a path pattern) or 'event' (an event name)")
    custom = "name" in g
    if "page" in g:
        page = clean_text(g["page"], f"{where}.page", MAX_PAGE)
        if not page.startswith("/"):
            raise SiteConfigError(f"{where}.page: a path pattern starts with '/'")
        if "?" in page or "#" in page:
            raise SiteConfigError(f"{where}.page: paths are stored without query or fragment; leave them out")
        if "props" in g:
            raise SiteConfigError(f"{where}.props: only event goals test property values")
        name = clean_text(g["name"], f"{where}.name", MAX_NAME) if custom else f"Visit {page}"
        return Goal(name=name, kind="page", page=page, custom_name=custom)
    event = clean_text(g["event"], f"{where}.event", MAX_NAME)
    if event in BUILTIN_EVENTS:
        raise SiteConfigError(f"{where}.event: {event!r} is built in; use a page goal for page views")
    raw_props = g.get("props") or {}
    if not isinstance(raw_props, dict) or len(raw_props) > MAX_PROP_KEYS:
        raise SiteConfigError(f"{where}.props: must be an object of at most {MAX_PROP_KEYS} key/value strings")
    props = {
        clean_text(k, f"{where}.props", MAX_KEY): clean_text(v, f"{where}.props.{k}", MAX_VALUE)
        for k, v in raw_props.items()
    }
    name = clean_text(g["name"], f"{where}.name", MAX_NAME) if custom else event
    return Goal(name=name, kind="event", event=event, props=props, custom_name=custom)


def _site(obj: Any, where: str) -> Site:
    s = _keys(obj, where, {"domain", "custom_events", "prop_keys", "goals", "funnels"}, {"domain"})
    domain = _domain(s["domain"], f"{where}.domain")
    where = f"sites[{domain}]"
    events = [
        clean_text(e, f"{where}.custom_events[{i}]", MAX_NAME)
        for i, e in enumerate(_list(s.get("custom_events"), f"{where}.custom_events", MAX_CUSTOM_EVENTS))
    ]
    for e in events:
        if e in BUILTIN_EVENTS:
            raise SiteConfigError(f"{where}.custom_events: {e!r} is built in, not a custom event")
    keys = [
        clean_text(k, f"{where}.prop_keys[{i}]", MAX_KEY)
        for i, k in enumerate(_list(s.get("prop_keys"), f"{where}.prop_keys", MAX_PROP_KEYS))
    ]
    goals = tuple(
        _goal(g, f"{where}.goals[{i}]") for i, g in enumerate(_list(s.get("goals"), f"{where}.goals", MAX_GOALS))
    )
    _unique([g.name for g in goals], f"{where}.goals", "goal name (give one of them a 'name')")
    funnels = []
    for i, raw in enumerate(_list(s.get("funnels"), f"{where}.funnels", MAX_FUNNELS)):
        fw = f"{where}.funnels[{i}]"
        f = _keys(raw, fw, {"name", "steps"}, {"name", "steps"})
        steps = [clean_text(x, f"{fw}.steps", MAX_NAME) for x in _list(f["steps"], f"{fw}.steps", FUNNEL_STEPS[1])]
        if len(steps) < FUNNEL_STEPS[0]:
            raise SiteConfigError(f"{fw}.steps: a funnel has {FUNNEL_STEPS[0]} to {FUNNEL_STEPS[1]} steps")
        names = {g.name for g in goals}
        for step in steps:
            if step not in names:
                raise SiteConfigError(f"{fw}.steps: {step!r} is not a goal of this site")
        funnels.append(Funnel(clean_text(f["name"], f"{fw}.name", MAX_NAME), _unique(steps, fw, "step")))
    _unique([f.name for f in funnels], f"{where}.funnels", "funnel name")
    events_t, keys_t = _unique(events, where, "custom event"), _unique(keys, where, "property key")
    site = Site(domain, events_t, keys_t, goals, tuple(funnels))
    if len(site.custom_events) > MAX_CUSTOM_EVENTS or len(site.prop_keys) > MAX_PROP_KEYS:
        raise SiteConfigError(f"{where}: goals bring it over {MAX_CUSTOM_EVENTS} events or {MAX_PROP_KEYS} keys")
    return site


def from_dict(data: Any, revision: str = "") -> SiteConfig:
    d = _keys(data, "configuration", {"format", "sites"}, {"sites"})
    if d.get("format", FORMAT) != FORMAT:
        raise SiteConfigError(f"format: this version reads format {FORMAT}, not {d.get('format')!r}")
    sites = tuple(_site(s, f"sites[{i}]") for i, s in enumerate(_list(d["sites"], "sites", MAX_SITES)))
    _unique([site_key(s.domain) for s in sites], "sites", "site")
    return SiteConfig(sites, revision)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SiteConfigError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def revision_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def parse(data: bytes | str) -> SiteConfig:
    raw = data.encode() if isinstance(data, str) else data
    try:
        obj = json.loads(raw, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        if isinstance(exc, SiteConfigError):
            raise
        raise SiteConfigError(f"not valid JSON: {exc}") from None
    return from_dict(obj, revision_of(raw))


def load(path: Path) -> SiteConfig:
    """Read and validate the file; :class:`SiteConfigError` names the file and the place."""
    try:
        return parse(path.read_bytes())
    except SiteConfigError as exc:
        raise SiteConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise SiteConfigError(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
