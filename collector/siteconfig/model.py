"""The site configuration's types: sites, goals, funnels, and the limits they keep."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

FORMAT = 1
BUILTIN_EVENTS = ("pageview", "engagement")
# Bounds (PRIVACY.md: bound everything): what one site may declare.
MAX_SITES = 1000
MAX_CUSTOM_EVENTS = 100
MAX_PROP_KEYS = 30
MAX_GOALS = 100
MAX_FUNNELS = 50
FUNNEL_STEPS = (2, 8)
MAX_NAME = 120  # an event, goal or funnel name (the Events API caps event names at 120 too)
MAX_KEY = 64
MAX_VALUE = 200  # collector.schema.MAX_TEXT: a stored property value is never longer
MAX_PAGE = 512  # collector.schema.MAX_PATH

DEFAULT_CUSTOM_EVENTS = ("Outbound Link: Click", "File Download", "404")
# What Plausible's tracker sends with its own events: the link of an outbound click or a
# download (kept as its host or file name only), the page of a 404.
DEFAULT_PROP_KEYS = ("url", "path")

GoalKind = Literal["page", "event"]


class SiteConfigError(ValueError):
    """The configuration cannot be used; the message says where (``sites[0].goals[2].page: ...``)."""


class SiteConfigConflict(SiteConfigError):
    """The file changed since the revision an edit started from."""


def clean_text(value: Any, where: str, limit: int, *, empty: bool = False) -> str:
    """A name as stored: NFKC, trimmed; no control or format characters; bounded."""
    if not isinstance(value, str):
        raise SiteConfigError(f"{where}: must be a string")
    text = unicodedata.normalize("NFKC", value).strip()
    if not text and not empty:
        raise SiteConfigError(f"{where}: must not be empty")
    if len(text) > limit:
        raise SiteConfigError(f"{where}: longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in text):
        raise SiteConfigError(f"{where}: holds control or invisible characters")
    return text


def page_regex(pattern: str) -> str:
    """Plausible's reading of a page goal's path pattern, as an anchored RE2/DuckDB/Python regex.

    As Plausible does (``Plausible.Stats.Filters.Utils.page_regex``): ``**`` and ``*``
    match any run of characters (``/`` included), ``|`` separates alternatives, and
    everything else is literal.
    """
    out = []
    for ch in pattern.replace("**", "*"):
        if ch == "*":
            out.append(".*")
        elif ch == "|":
            out.append("|")
        elif ch in r"\.^$?+()[]{}":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "^(?:" + "".join(out) + ")$"


@dataclass(frozen=True, slots=True)
class Goal:
    """A page goal (a path pattern) or an event goal (an event name, optionally property values)."""

    name: str  # Plausible's display name: "Visit <pattern>" for page goals, the event name for event goals
    kind: GoalKind
    page: str | None = None
    event: str | None = None
    props: dict[str, str] = field(default_factory=dict, hash=False)
    custom_name: bool = field(default=False, compare=False)

    @property
    def page_regex(self) -> str | None:
        return page_regex(self.page) if self.page is not None else None

    def matches(self, name: str, path: str, props: dict[str, str] | None = None) -> bool:
        """Does a stored event (name, path, props) convert this goal?"""
        if self.kind == "page":
            return name == "pageview" and re.fullmatch(page_regex(self.page or ""), path) is not None
        if name != self.event:
            return False
        have = props or {}
        return all(have.get(k) == v for k, v in self.props.items())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"page": self.page} if self.kind == "page" else {"event": self.event}
        if self.props:
            out["props"] = dict(self.props)
        if self.custom_name:
            out["name"] = self.name
        return out


@dataclass(frozen=True, slots=True)
class Funnel:
    name: str
    steps: tuple[str, ...]  # goal names, in order

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": list(self.steps)}


@dataclass(frozen=True, slots=True)
class Site:
    domain: str
    declared_events: tuple[str, ...] = ()
    declared_prop_keys: tuple[str, ...] = ()
    goals: tuple[Goal, ...] = ()
    funnels: tuple[Funnel, ...] = ()

    @property
    def custom_events(self) -> tuple[str, ...]:
        """Custom event names the collector stores: the declared ones and those of event goals."""
        goal_events = [g.event for g in self.goals if g.event is not None]
        return tuple(dict.fromkeys([*self.declared_events, *goal_events]))

    @property
    def prop_keys(self) -> tuple[str, ...]:
        """Property keys the collector keeps: the declared ones and those event goals test."""
        goal_keys = [k for g in self.goals for k in g.props]
        return tuple(dict.fromkeys([*self.declared_prop_keys, *goal_keys]))

    def goal(self, name: str) -> Goal | None:
        return next((g for g in self.goals if g.name == name), None)

    def funnel(self, name: str) -> Funnel | None:
        return next((f for f in self.funnels if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "custom_events": list(self.declared_events),
            "prop_keys": list(self.declared_prop_keys),
            "goals": [g.to_dict() for g in self.goals],
            "funnels": [f.to_dict() for f in self.funnels],
        }


def site_key(domain: str) -> str:
    """How a domain is looked up: lower case, no ``www.`` (``www.x`` and ``x`` are one site)."""
    return domain.strip().lower().removeprefix("www.")


@dataclass(frozen=True, slots=True)
class SiteConfig:
    sites: tuple[Site, ...]
    revision: str = field(default="", compare=False)  # of the file it was read from ("" if none)

    def site(self, domain: str) -> Site | None:
        key = site_key(domain)
        return next((s for s in self.sites if site_key(s.domain) == key), None)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(s.domain for s in self.sites)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "sites": [s.to_dict() for s in self.sites]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def replace_site(self, site: Site) -> SiteConfig:
        """This configuration with ``site`` added, or replacing the site of the same domain (validated)."""
        key = site_key(site.domain)
        sites = [site if site_key(s.domain) == key else s for s in self.sites]
        if all(site_key(s.domain) != key for s in self.sites):
            sites.append(site)
        return SiteConfig(tuple(sites)).validated()

    def remove_site(self, domain: str) -> SiteConfig:
        return SiteConfig(tuple(s for s in self.sites if site_key(s.domain) != site_key(domain))).validated()

    def validated(self) -> SiteConfig:
        """This configuration as the file would read it back (every rule checked; :class:`SiteConfigError`)."""
        from collector.siteconfig.parse import from_dict

        return from_dict(json.loads(self.to_json()))
