"""The published record format: the data inventory and the ``Event`` it allows.

PRIVACY.md's inventory lives here as one declaration. The ``Event`` type, the
"what we collect" table (docs/privacy.md), the aggregator's lake schema and a test all
derive from :data:`INVENTORY`; a test fails when they drift apart. ``Event`` has
no field able to hold an IP address or a user-agent string: the raw request
never gets past the collector's request handler.

This module must stay importable with the standard library only (the
aggregator reads spool records with it).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: 2 added ``props``. Records of version 1 (segments written before an upgrade) are still
#: read: they carry no custom properties.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)

#: Longest stored value of a free-text field (attacker-controlled input is capped at ingest).
MAX_PATH = 512
MAX_TEXT = 200
#: Custom properties of one event, and the longest key (keys come from the site configuration).
MAX_PROPS = 30
MAX_PROP_KEY = 64
#: What a property value beyond a site's daily cap of distinct values is stored as (aggregator/props.py).
OTHER_VALUE = "(other)"


@dataclass(frozen=True, slots=True)
class StoredField:
    name: str
    json_type: str  # "str", "int", or "map" (a JSON object of strings: MAP(VARCHAR, VARCHAR) in the lake)
    nullable: bool
    lake_type: str  # the DuckDB/Parquet column type in the lake
    group: str  # the row of PRIVACY.md's inventory this field belongs to
    derived_from: str
    kept_as: str
    policy: str


def _f(
    name: str, json_type: str, nullable: bool, lake_type: str, group: str, derived_from: str, kept_as: str, policy: str
) -> StoredField:
    return StoredField(name, json_type, nullable, lake_type, group, derived_from, kept_as, policy)


_REF = "the Web page you were on when you link to our sites"
_UA_BROWSER = "the type of browser"

INVENTORY: tuple[StoredField, ...] = (
    _f(
        "site",
        "str",
        False,
        "VARCHAR",
        "site",
        "payload domain, checked against the allowlist",
        "hostname",
        "OneCloud websites",
    ),
    _f("ts", "int", False, "TIMESTAMP", "timestamp", "server clock", "UTC, whole seconds", "operation of the sites"),
    _f(
        "name",
        "str",
        False,
        "VARCHAR",
        "event name",
        "payload",
        "`pageview`, `engagement`, allowlisted custom names",
        "which pages are viewed; interaction",
    ),
    _f(
        "path",
        "str",
        False,
        "VARCHAR",
        "page path",
        "payload URL",
        "path only, scrubbed; no query, no fragment",
        "which pages are viewed",
    ),
    _f(
        "referrer_source",
        "str",
        True,
        "VARCHAR",
        "referrer",
        "Referer / payload, UTM source",
        "source name (named source, else host)",
        _REF,
    ),
    _f(
        "referrer_host",
        "str",
        True,
        "VARCHAR",
        "referrer",
        "Referer / payload",
        "host of an external referrer; none for internal",
        _REF,
    ),
    _f(
        "referrer_path",
        "str",
        True,
        "VARCHAR",
        "referrer",
        "Referer / payload",
        "scrubbed path of an external referrer",
        _REF,
    ),
    _f(
        "channel",
        "str",
        False,
        "VARCHAR",
        "referrer",
        "source and UTM medium",
        "channel class (Direct, Organic Search, Social, ...)",
        _REF,
    ),
    _f("utm_source", "str", True, "VARCHAR", "campaign", "URL query", "`utm_source` value only", _REF),
    _f("utm_medium", "str", True, "VARCHAR", "campaign", "URL query", "`utm_medium` value only", _REF),
    _f("utm_campaign", "str", True, "VARCHAR", "campaign", "URL query", "`utm_campaign` value only", _REF),
    _f("utm_content", "str", True, "VARCHAR", "campaign", "URL query", "`utm_content` value only", _REF),
    _f("utm_term", "str", True, "VARCHAR", "campaign", "URL query", "`utm_term` value only", _REF),
    _f("browser", "str", False, "VARCHAR", "browser, version", "User-Agent", "family", _UA_BROWSER),
    _f("browser_version", "str", False, "VARCHAR", "browser, version", "User-Agent", "major version", _UA_BROWSER),
    _f("os", "str", False, "VARCHAR", "operating system, version", "User-Agent", "family", "the operating system"),
    _f(
        "os_version",
        "str",
        False,
        "VARCHAR",
        "operating system, version",
        "User-Agent",
        "major version",
        "the operating system",
    ),
    _f("device", "str", False, "VARCHAR", "device class", "User-Agent", "desktop / mobile / tablet", _UA_BROWSER),
    _f("asn", "int", True, "INTEGER", "ISP", "IP, looked up in memory", "AS number", "Internet service provider"),
    _f(
        "isp",
        "str",
        True,
        "VARCHAR",
        "ISP",
        "IP, looked up in memory",
        "AS organisation name",
        "Internet service provider",
    ),
    _f(
        "network_domain",
        "str",
        True,
        "VARCHAR",
        "network domain (off by default)",
        "IP, reverse DNS",
        "registrable domain only",
        "the domain name",
    ),
    _f(
        "day_key",
        "int",
        False,
        "UBIGINT",
        "day key",
        "keyed hash of (salt of the day, site, IP, UA)",
        "64 bits",
        "needed to count visitors; cannot identify once the salt is gone",
    ),
    _f(
        "engaged_ms",
        "int",
        True,
        "INTEGER",
        "engaged time, scroll depth",
        "engagement events",
        "milliseconds, clipped to 30 minutes",
        "how much time a visitor spends on each page",
    ),
    _f(
        "scroll_depth",
        "int",
        True,
        "SMALLINT",
        "engaged time, scroll depth",
        "engagement events",
        "percent 0-100",
        "how much time a visitor spends on each page",
    ),
    # One MAP column rather than a column per key: keys differ per site and change with
    # the site configuration, and Parquet's MAP logical type is read as such by DuckDB,
    # Spark, Trino and ClickHouse alike (a list of key/value structs would be the same
    # bytes, but every engine would need a lambda to look a key up).
    _f(
        "props",
        "map",
        False,
        "MAP(VARCHAR, VARCHAR)",
        "custom property",
        "payload `p`/`props`, keys allowlisted per site (site configuration)",
        "values scrubbed like a path, capped at 200 characters; `url` of a download: the file name, of an outbound"
        " link: the host; at most N distinct values per key, site and day, the rest `(other)` (at ingest)",
        "other information related to the operation and interaction of OneCloud websites",
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in INVENTORY)

#: Engaged time above this in one report counts as this much (ARCHITECTURE.md "time on page").
MAX_ENGAGED_MS = 30 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Event:
    """One de-identified event, exactly the fields of :data:`INVENTORY`, in that order."""

    site: str
    ts: int
    name: str
    path: str
    referrer_source: str | None
    referrer_host: str | None
    referrer_path: str | None
    channel: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_content: str | None
    utm_term: str | None
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    asn: int | None
    isp: str | None
    network_domain: str | None
    day_key: int
    engaged_ms: int | None
    scroll_depth: int | None
    # (key, value) pairs sorted by key: immutable and hashable like every other field.
    props: tuple[tuple[str, str], ...] = ()

    def to_record(self) -> dict[str, Any]:
        """The spool record: the schema version first, then every inventory field."""
        record: dict[str, Any] = {"v": SCHEMA_VERSION}
        for name in FIELD_NAMES:
            record[name] = getattr(self, name)
        record["props"] = dict(self.props)
        return record

    @classmethod
    def from_record(cls, record: Any) -> Event:
        """Validate a spool record; raises :class:`RecordError` naming what is wrong."""
        if not isinstance(record, dict):
            raise RecordError("record is not a JSON object")
        version = record.get("v")
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise RecordError(f"unsupported schema version {version!r}")
        fields = INVENTORY if version == SCHEMA_VERSION else INVENTORY[:-1]  # v1: no props
        extra = set(record) - {f.name for f in fields} - {"v"}
        if extra:
            raise RecordError(f"fields not in the inventory: {sorted(extra)}")
        values: dict[str, Any] = {}
        for f in fields:
            if f.name not in record:
                raise RecordError(f"missing field {f.name}")
            value = record[f.name]
            if value is None:
                if not f.nullable:
                    raise RecordError(f"field {f.name} may not be null")
            elif f.json_type == "map":
                value = _props(value)
            elif f.json_type == "int":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise RecordError(f"field {f.name} is not an integer")
            elif not isinstance(value, str):
                raise RecordError(f"field {f.name} is not a string")
            values[f.name] = value
        if not 0 <= values["day_key"] < 2**64:
            raise RecordError("field day_key is out of range")
        return cls(**values)


class RecordError(ValueError):
    """A spool record that does not match the schema."""


def _props(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise RecordError("field props is not an object")
    if len(value) > MAX_PROPS:
        raise RecordError(f"field props has more than {MAX_PROPS} entries")
    for k, v in value.items():
        if not isinstance(v, str) or not 0 < len(k) <= MAX_PROP_KEY or len(v) > MAX_TEXT:
            raise RecordError("field props holds a key or value that is not a bounded string")
    return tuple(sorted(value.items()))


def parse_line(line: bytes | str) -> Event:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise RecordError(f"not JSON: {exc.__class__.__name__}") from None
    return Event.from_record(record)


def inventory_markdown() -> str:
    """The "what we collect" table of docs/privacy.md, generated from :data:`INVENTORY`."""
    lines = [
        "| field | group (PRIVACY.md) | derived from | kept as | policy phrase |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in INVENTORY:
        lines.append(f'| `{f.name}` | {f.group} | {f.derived_from} | {f.kept_as} | "{f.policy}" |')
    return "\n".join(lines) + "\n"


assert tuple(f.name for f in dataclasses.fields(Event)) == FIELD_NAMES, "Event and INVENTORY differ"


def _event_maker() -> Any:
    # The dataclass's own __init__ sets each of the 25 frozen fields through
    # ``object.__setattr__`` (a global lookup, an attribute lookup and a call per field: ~2 µs
    # per event on the collector's hot path). This builds the very same object by calling each
    # slot's descriptor directly, about twice as fast. Positional, in INVENTORY order.
    names = ", ".join(FIELD_NAMES)
    body = "".join(f"    _set_{n}(e, {n})\n" for n in FIELD_NAMES)
    scope: dict[str, Any] = {"_new": object.__new__, "Event": Event}
    scope.update({f"_set_{n}": getattr(Event, n).__set__ for n in FIELD_NAMES})
    exec(f"def new_event({names}):\n    e = _new(Event)\n{body}    return e\n", scope)
    return scope["new_event"]


#: ``new_event(site, ts, ..., props)``: an :class:`Event`, equal to ``Event(site, ts, ..., props)``
#: (values in :data:`FIELD_NAMES` order, every field given; no checks beyond the type's own).
new_event: Callable[..., Event] = _event_maker()


# --- Drop counts --------------------------------------------------------------------------------
# How many events each collector worker answered 202 and did not store, per site, UTC day and reason
# (collector/dropcounts.py writes them as small sealed spool files; aggregator/drops.py sums them into
# the lake). Counts only: no field says anything about a visitor, so none is in :data:`INVENTORY`;
# docs/privacy.md lists the table.

#: The name ending of a sealed spool file of drop counts (event segments end in ``.jsonl``).
DROP_COUNTS_SUFFIX = ".drops"
DROP_COUNTS_VERSION = 1
#: The codes a count may carry: collector.reasons' DropReason and DropKind (tests/collector/test_dropcounts.py
#: keeps them equal; this module stays standard library only, so it cannot import them).
DROP_COUNT_REASONS = ("bot", "opt_out", "unknown_site", "unknown_event", "localhost", "unparsable_url")
DROP_COUNT_KINDS = ("automation", "crawler", "client", "junk", "datacenter")
#: Counts above this in one record are refused (a worker cannot drop more in one flush interval).
MAX_DROP_COUNT = 2**40


@dataclass(frozen=True, slots=True)
class DropCount:
    """``events`` dropped for ``reason`` (and bot ``kind``) on ``day`` for a known ``site`` (None: no known site)."""

    site: str | None
    day: str  # YYYY-MM-DD, UTC
    reason: str
    kind: str | None
    events: int

    def to_record(self) -> dict[str, Any]:
        return {"v": DROP_COUNTS_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_record(cls, record: Any) -> DropCount:
        """Validate a drop-count record; raises :class:`RecordError` naming what is wrong."""
        if not isinstance(record, dict) or record.get("v") != DROP_COUNTS_VERSION:
            raise RecordError("not a drop-count record of a known version")
        if set(record) != {"v", "site", "day", "reason", "kind", "events"}:
            raise RecordError("drop-count record has other fields than site, day, reason, kind, events")
        site, day, reason, kind, events = (record[k] for k in ("site", "day", "reason", "kind", "events"))
        if site is not None and not (isinstance(site, str) and 0 < len(site) <= 253):
            raise RecordError("field site is not a hostname")
        if not isinstance(day, str) or not _is_day(day):
            raise RecordError("field day is not a YYYY-MM-DD date")
        if reason not in DROP_COUNT_REASONS:
            raise RecordError("field reason is not a drop reason")
        if kind is not None and (reason != "bot" or kind not in DROP_COUNT_KINDS):
            raise RecordError("field kind is not a bot kind of a bot drop")
        if not isinstance(events, int) or isinstance(events, bool) or not 0 < events <= MAX_DROP_COUNT:
            raise RecordError("field events is not a positive count")
        return cls(site, day, reason, kind, events)


def _is_day(text: str) -> bool:
    try:
        return len(text) == 10 and datetime.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False
