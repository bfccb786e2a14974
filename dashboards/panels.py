"""The overview's breakdown panels: which Stats API dimensions each tab shows, and its filter keys.

A filter key is the short query-string name a row click adds (``?browser=Chrome``);
:data:`FILTERS` maps each one to its Stats API dimension. A site's custom
properties are keys of their own, ``prop.<key>`` (``?prop.plan=Business`` is
``event:props:plan``), for the keys its configuration allows; goals are
``goal`` (``event:goal``). The Goals and Properties panels exist per site
(:func:`site_panels`): a site without goals or property keys has nothing to show there.
"""

from __future__ import annotations

from dataclasses import dataclass

# "(none)": the query layer's word for a missing value, unknown networks included, on every surface.
from aggregator.dimensions import GOAL, NONE, PROPS, is_public
from aggregator.metrics import GOAL_METRICS
from aggregator.request import OTHER

FILTERS: dict[str, tuple[str, str]] = {
    # key: (dimension, label)
    "page": ("event:page", "Page"),
    "entry_page": ("visit:entry_page", "Entry page"),
    "exit_page": ("visit:exit_page", "Exit page"),
    "channel": ("visit:channel", "Channel"),
    "source": ("visit:source", "Source"),
    "referrer": ("visit:referrer", "Referrer"),
    "utm_source": ("visit:utm_source", "UTM source"),
    "utm_medium": ("visit:utm_medium", "UTM medium"),
    "utm_campaign": ("visit:utm_campaign", "UTM campaign"),
    "utm_content": ("visit:utm_content", "UTM content"),
    "utm_term": ("visit:utm_term", "UTM term"),
    "browser": ("visit:browser", "Browser"),
    "browser_version": ("visit:browser_version", "Browser version"),
    "os": ("visit:os", "OS"),
    "os_version": ("visit:os_version", "OS version"),
    "device": ("visit:device", "Device"),
    "isp": ("visit:isp", "ISP"),
    "asn": ("visit:asn", "AS number"),
    "event": ("event:name", "Event"),
    "goal": (GOAL, "Goal"),
}
#: The filter key of a custom property: ``prop.plan`` filters ``event:props:plan``.
PROP = "prop."


def prop_key(name: str) -> str | None:
    """The filter key of property ``name``, or None if the query layer cannot name it (docs/goals.md)."""
    return PROP + name if is_public(PROPS + name) else None


def is_filter_key(key: str) -> bool:
    return key in FILTERS or (key.startswith(PROP) and prop_key(key[len(PROP) :]) == key)


def filter_dimension(key: str) -> str:
    return FILTERS[key][0] if key in FILTERS else PROPS + key[len(PROP) :]


def filter_label(key: str) -> str:
    return FILTERS[key][1] if key in FILTERS else f"Property {key[len(PROP) :]}"


_VISIT = ("visitors", "visits", "bounce_rate")
_SIMPLE = ("visitors", "visits")


@dataclass(frozen=True, slots=True)
class Tab:
    key: str
    label: str
    filter_keys: tuple[str, ...]  # one per dimension, in order
    metrics: tuple[str, ...]
    #: The filter keys a click on a row sets (default: all): the AS-number tab shows each AS with its name
    #: but filters by the number alone.
    click_keys: tuple[str, ...] | None = None
    #: The metrics under a goal filter (Plausible's: the converting visitors, and their share of the row's
    #: visitors without the goal filter).
    goal_metrics: tuple[str, ...] = ("visitors", "group_conversion_rate")

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(filter_dimension(k) for k in self.filter_keys)

    def click(self, values: tuple[str, ...]) -> dict[str, str]:
        keys = self.click_keys or self.filter_keys
        return {k: v for k, v in zip(self.filter_keys, values, strict=True) if k in keys}

    def label_of(self, values: tuple[str, ...]) -> str:
        if self.filter_keys == ("asn", "isp") and values[0] not in (NONE, OTHER):
            return f"AS{values[0]} {values[1]}"
        if len(set(values)) == 1:
            return values[0]  # (other) in every column
        return " ".join(values)


@dataclass(frozen=True, slots=True)
class Panel:
    key: str
    title: str
    tabs: tuple[Tab, ...]

    def tab(self, key: str | None) -> Tab:
        for t in self.tabs:
            if t.key == key:
                return t
        return self.tabs[0]


PANELS: tuple[Panel, ...] = (
    Panel(
        "pages",
        "Pages",
        (
            Tab("page", "Top pages", ("page",), ("visitors", "pageviews", "time_on_page", "scroll_depth")),
            Tab("entry", "Entry pages", ("entry_page",), _VISIT),
            Tab("exit", "Exit pages", ("exit_page",), _SIMPLE),
        ),
    ),
    Panel(
        "sources",
        "Sources",
        (
            Tab("channel", "Channels", ("channel",), _VISIT),
            Tab("source", "Sources", ("source",), _VISIT),
            Tab("referrer", "Referrers", ("referrer",), _VISIT),
            Tab("utm_source", "UTM source", ("utm_source",), _VISIT),
            Tab("utm_medium", "UTM medium", ("utm_medium",), _VISIT),
            Tab("utm_campaign", "UTM campaign", ("utm_campaign",), _VISIT),
            Tab("utm_content", "UTM content", ("utm_content",), _VISIT),
            Tab("utm_term", "UTM term", ("utm_term",), _VISIT),
        ),
    ),
    Panel(
        "browsers",
        "Browsers",
        (
            Tab("browser", "Browsers", ("browser",), _SIMPLE),
            Tab("version", "Versions", ("browser", "browser_version"), _SIMPLE),
        ),
    ),
    Panel(
        "os",
        "Operating systems",
        (
            Tab("os", "Systems", ("os",), _SIMPLE),
            Tab("version", "Versions", ("os", "os_version"), _SIMPLE),
        ),
    ),
    Panel("devices", "Devices", (Tab("device", "Devices", ("device",), _SIMPLE),)),
    Panel(
        "isps",
        "ISPs",
        (
            Tab("isp", "ISPs", ("isp",), _SIMPLE),
            Tab("asn", "AS numbers", ("asn", "isp"), _SIMPLE, click_keys=("asn",)),
        ),
    ),
    Panel("events", "Events", (Tab("event", "Events", ("event",), ("visitors", "events")),)),
)

#: One row per goal: its converting visitors ("uniques"), its conversions ("total") and conversion rate.
GOALS = Panel("goals", "Goals", (Tab("goal", "Goal", ("goal",), GOAL_METRICS, goal_metrics=GOAL_METRICS),))
PROPS_PANEL = "props"


def props_panel(keys: tuple[str, ...]) -> Panel:
    """One tab per property key of the site; under a goal filter, the goal's events only (Plausible's)."""
    tabs = tuple(
        Tab(name, name, (key,), ("visitors", "events"), goal_metrics=GOAL_METRICS)
        for name in keys
        if (key := prop_key(name)) is not None
    )
    return Panel(PROPS_PANEL, "Properties", tabs)


def site_panels(goals: bool, prop_keys: tuple[str, ...]) -> tuple[Panel, ...]:
    """Every panel of a site's overview: the fixed ones, then Goals and Properties when it has any."""
    extra = props_panel(prop_keys)
    return PANELS + ((GOALS,) if goals else ()) + ((extra,) if extra.tabs else ())
