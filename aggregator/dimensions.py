"""The Stats API dimensions: what each one means and its SQL over sessionized rows.

Every dimension value is a string; a missing value is ``(none)`` (the source
and referrer of a visit without one are ``Direct / None``), so filters and
groups use the same expression. The SQL fragments are fixed text chosen by
name from this allowlist; user values only ever reach SQL as bound parameters.

Visit dimensions describe the visit an event belongs to: acquisition
(source, referrer, channel, UTM) comes from the visit's *entry event* (its first
pageview, or its first event if it has none); the exit page is its last
pageview's path. Browser, OS, device and ISP are the event's own (they are
derived from the same IP and UA as the day key, so constant within a visit).
"""

from __future__ import annotations

from dataclasses import dataclass

NONE = "(none)"
DIRECT = "Direct / None"


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    sql: str  # over the `rows` relation built by querybuild.base_sql
    rollup: bool  # answerable from the daily rollup tables
    per_event: bool = False  # varies within a visit (else constant per visit: expanded over visits, not events)
    #: The same value computed from one raw event's own columns (plus ``day``): for a visit dimension, what it
    #: would be if this event were the visit's entry (or exit) event. A visit matches a filter only if one of
    #: its events does so by this expression, which lets a filtered query sessionize only those day keys.
    event_sql: str = ""
    #: Kept in the rollups only, never named in a request: a two-dimension breakdown stored as one
    #: dimension whose value is the JSON array of both values (see ROLLUP_PAIRS).
    internal: bool = False

    def __post_init__(self) -> None:
        if not self.event_sql:
            object.__setattr__(self, "event_sql", self.sql)


def _none(col: str) -> str:
    return f"coalesce(CAST({col} AS VARCHAR), '{NONE}')"


def _pair(a: str, b: str) -> str:
    return f"to_json([{_none(a)}, {_none(b)}])"


_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

_DIMS = [
    Dimension("event:page", "path", True, per_event=True),
    Dimension("event:name", "name", True, per_event=True),
    Dimension("visit:entry_page", _none("entry.path"), True, event_sql=_none("path")),
    Dimension("visit:exit_page", _none("exit_page"), True, event_sql=_none("path")),
    Dimension(
        "visit:source",
        f"coalesce(entry.source, '{DIRECT}')",
        True,
        event_sql=f"coalesce(referrer_source, '{DIRECT}')",
    ),
    Dimension(
        "visit:referrer",
        f"CASE WHEN entry.host IS NULL THEN '{DIRECT}' ELSE entry.host || coalesce(entry.rpath, '') END",
        True,
        event_sql=(
            f"CASE WHEN referrer_host IS NULL THEN '{DIRECT}' ELSE referrer_host || coalesce(referrer_path, '') END"
        ),
    ),
    Dimension("visit:channel", _none("entry.channel"), True, event_sql=_none("channel")),
    *(Dimension(f"visit:{u}", _none(f"entry.{u}"), True, event_sql=_none(u)) for u in _UTM),
    Dimension("visit:browser", _none("browser"), True),
    Dimension("visit:browser_version", _none("browser_version"), True),
    Dimension("visit:os", _none("os"), True),
    Dimension("visit:os_version", _none("os_version"), True),
    Dimension("visit:device", _none("device"), True),
    Dimension("visit:isp", _none("isp"), True),
    Dimension("visit:asn", _none("asn"), True),
    Dimension("visit:network_domain", _none("network_domain"), True),
    # The dashboards' "versions" tabs, so that they need no raw scan either.
    Dimension(
        "pair:browser_version", f"to_json([{_none('browser')}, {_none('browser_version')}])", True, internal=True
    ),
    Dimension("pair:os_version", f"to_json([{_none('os')}, {_none('os_version')}])", True, internal=True),
    # Time dimensions are UTC. Rollups answer day/week/month from their per-day totals.
    Dimension("time:day", "strftime(day, '%Y-%m-%d')", True),
    Dimension("time:week", "strftime(date_trunc('week', day), '%Y-%m-%d')", True),
    Dimension("time:month", "strftime(date_trunc('month', day), '%Y-%m-%d')", True),
    Dimension("time:hour", "strftime(date_trunc('hour', ts), '%Y-%m-%d %H:00:00')", False, per_event=True),
]

DIMENSIONS: dict[str, Dimension] = {d.name: d for d in _DIMS}

#: What a request may name (the Stats API's dimensions).
PUBLIC_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in _DIMS if not d.internal)

#: Dimensions stored in the rollup tables (time:* come from each day's totals row).
ROLLUP_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in _DIMS if d.rollup and not d.name.startswith("time:"))

#: Two-dimension requests answered from an internal rollup dimension (value: JSON array of both).
ROLLUP_PAIRS: dict[tuple[str, ...], str] = {
    ("visit:browser", "visit:browser_version"): "pair:browser_version",
    ("visit:os", "visit:os_version"): "pair:os_version",
}

#: Time dimensions a rollup answers from its per-day totals (the querier buckets the days itself).
ROLLUP_TIME_DIMENSIONS: frozenset[str] = frozenset(d.name for d in _DIMS if d.rollup and d.name.startswith("time:"))
