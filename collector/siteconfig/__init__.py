"""The site configuration: sites, their custom events and property keys, goals and funnels.

One JSON file (docs/goals.md) is the one source the collector (what to accept),
the aggregator (what a goal or a funnel is) and the dashboards (what to show,
and where admins edit it) all read. It is configuration, not visitor data.
Every process re-reads it when its ``stat`` changes (:class:`Watcher`), so a
change needs no restart: on one host the dashboards write it, on several hosts
configuration management keeps a copy on each.

Standard library only, like :mod:`onecloud_kit.settings`: the aggregator and the
dashboards import it, and must not pull in the collector's dependencies. Import
from this package (``from collector.siteconfig import load``), not from its
modules: the package is what the import boundaries allow.

The API the query layer uses: ``load(path) -> SiteConfig``, ``SiteConfig.site(domain)
-> Site | None``, ``Site.goals`` (``Goal.name``, ``kind``, ``page``, ``event``,
``props``, ``page_regex``), ``Site.funnels`` (``Funnel.name``, ``steps``: goal names),
``Site.prop_keys``, ``Site.custom_events``.
"""

from __future__ import annotations

from collector.siteconfig.model import (
    BUILTIN_EVENTS,
    DEFAULT_CUSTOM_EVENTS,
    DEFAULT_PROP_KEYS,
    FUNNEL_STEPS,
    MAX_CUSTOM_EVENTS,
    MAX_FUNNELS,
    MAX_GOALS,
    MAX_KEY,
    MAX_NAME,
    MAX_PROP_KEYS,
    MAX_VALUE,
    Funnel,
    Goal,
    GoalKind,
    Site,
    SiteConfig,
    SiteConfigConflict,
    SiteConfigError,
    page_regex,
    site_key,
)
from collector.siteconfig.parse import from_dict, load, parse, revision_of
from collector.siteconfig.store import DEMO_SITE, Watcher, demo_site, ensure, save, seed_config

__all__ = [
    "BUILTIN_EVENTS",
    "DEFAULT_CUSTOM_EVENTS",
    "DEFAULT_PROP_KEYS",
    "DEMO_SITE",
    "FUNNEL_STEPS",
    "MAX_CUSTOM_EVENTS",
    "MAX_FUNNELS",
    "MAX_GOALS",
    "MAX_KEY",
    "MAX_NAME",
    "MAX_PROP_KEYS",
    "MAX_VALUE",
    "Funnel",
    "Goal",
    "GoalKind",
    "Site",
    "SiteConfig",
    "SiteConfigConflict",
    "SiteConfigError",
    "Watcher",
    "demo_site",
    "ensure",
    "from_dict",
    "load",
    "page_regex",
    "parse",
    "revision_of",
    "save",
    "seed_config",
    "site_key",
]
