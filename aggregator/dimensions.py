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

import re
from dataclasses import dataclass

NONE = "(none)"
DIRECT = "Direct / None"


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    #: Over the sessionized events and over the per-visit table alike (aggregator/sessions.py: the two share
    #: their column names); event dimensions over the events only.
    sql: str
    rollup: bool  # answerable from the daily rollup tables
    per_event: bool = False  # varies within a visit (else constant per visit part: read from the per-visit table)
    #: Kept in the rollups only, never named in a request: a two-dimension breakdown stored as one
    #: dimension whose value is the JSON array of both values (see ROLLUP_PAIRS).
    internal: bool = False
    #: When ``sql`` is just a text column (NULL shown as ``missing``): filters compare the column itself, which
    #: DuckDB can push into the Parquet scan (a function of the column it cannot).
    column: str | None = None
    missing: str | None = None


def _none(col: str) -> str:
    return f"coalesce(CAST({col} AS VARCHAR), '{NONE}')"


def _text(name: str, col: str, rollup: bool = True, missing: str = NONE) -> Dimension:
    """A dimension that is one text column, NULL shown as ``missing``."""
    return Dimension(name, f"coalesce({col}, '{missing}')", rollup, column=col, missing=missing)


_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

_DIMS = [
    Dimension("event:page", "path", True, per_event=True, column="path"),
    Dimension("event:name", "name", True, per_event=True, column="name"),
    _text("visit:entry_page", "v_entry"),
    _text("visit:exit_page", "v_exit"),
    _text("visit:source", "v_source", missing=DIRECT),
    Dimension(
        "visit:referrer", f"CASE WHEN v_host IS NULL THEN '{DIRECT}' ELSE v_host || coalesce(v_rpath, '') END", True
    ),
    _text("visit:channel", "v_channel"),
    *(_text(f"visit:{u}", f"v_{u}") for u in _UTM),
    _text("visit:browser", "browser"),
    _text("visit:browser_version", "browser_version"),
    _text("visit:os", "os"),
    _text("visit:os_version", "os_version"),
    _text("visit:device", "device"),
    _text("visit:isp", "isp"),
    Dimension("visit:asn", _none("asn"), True),
    _text("visit:network_domain", "network_domain"),
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

#: The dimensions of the daily *slices*' cells (aggregator/slices.py): a filter on these alone is answered
#: from summed rows, like an unfiltered page. All three come from the User-Agent the day key is keyed with
#: (one cell per visitor and day, which the sums need) and have few values (a day's cells are their product).
SLICE_DIMENSIONS: tuple[str, ...] = ("visit:browser", "visit:os", "visit:device")

#: The columns a slice holds: every public rollup dimension (not the internal pairs).
SLICE_COLUMNS: tuple[str, ...] = tuple(d for d in ROLLUP_DIMENSIONS if not DIMENSIONS[d].internal)

PROPS = "event:props:"
GOAL = "event:goal"
#: A custom property key a request may name: keys come from the site configuration; these characters are the
#: ones a key may have to be named in SQL text (as a string literal) without any escaping.
_PROP_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")


def dimension(name: str) -> Dimension | None:
    """A dimension by name: the fixed ones, ``event:goal`` and ``event:props:<key>`` (None: unknown)."""
    found = DIMENSIONS.get(name)
    if found is not None:
        return found
    if name == GOAL:
        # Which goals an event converts depends on the site configuration: the query layer adds the column.
        return Dimension(GOAL, "goal", False, per_event=True)
    if name.startswith(PROPS) and _PROP_KEY.fullmatch(name[len(PROPS) :]):
        key = name[len(PROPS) :]
        return Dimension(name, f"coalesce(props['{key}'], '{NONE}')", False, per_event=True)
    return None


def is_public(name: str) -> bool:
    d = dimension(name)
    return d is not None and not d.internal
