"""Validation of spool records, once in bulk SQL and once in Python, with the same reasons.

DuckDB parses the segments in bulk; every value is first read as JSON so that
its JSON type can be checked as :meth:`collector.schema.Event.from_record` does
(DuckDB's typed reader would silently turn ``"7"`` into 7). A segment with a
line DuckDB cannot parse, keys outside the inventory, or a row failing the bulk
check takes the Python path (:func:`check_line`) line by line, which gives the
precise reason and keeps ingesting the rest.

All identifiers in the SQL below come from :data:`collector.schema.INVENTORY`,
never from input.
"""

from __future__ import annotations

import json
from typing import Any

from collector.schema import (
    FIELD_NAMES,
    INVENTORY,
    MAX_PROP_KEY,
    MAX_PROPS,
    MAX_TEXT,
    SCHEMA_VERSION,
    Event,
    RecordError,
    parse_line,
)

#: Keys of a valid record: the schema version plus every inventory field.
RECORD_KEYS = len(FIELD_NAMES) + 1

# Lake integer types and their ranges: a value that does not fit is rejected, not wrapped.
_INT_RANGES = {
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
    "UBIGINT": (0, 2**64 - 1),
}
#: Whole seconds from 1970 to the end of year 9999 (what a TIMESTAMP column holds).
MAX_TS = 253402300799

REDACTED = "(redacted)"


def json_columns_sql() -> str:
    """The ``columns=`` struct for ``read_json``: every key read as raw JSON."""
    cols = ["v: 'JSON'"] + [f"{f.name}: 'JSON'" for f in INVENTORY]
    return "{" + ", ".join(cols) + "}"


def _text(col: str) -> str:
    return f"CAST({col} AS VARCHAR)"


def fast_ok_sql() -> str:
    """A cheap test that a row is valid, on the JSON text DuckDB re-serialised (no JSON parsing).

    Integers come out as plain digits and floats always with a ``.`` or an
    exponent, strings start with a quote. Rows failing it get the exact
    per-line check of :func:`check_line`; nearly all rows pass, so the bulk path stays fast.
    It must never accept what ``Event.from_record`` rejects (tests hold it to that).
    """
    conds = [f"{_text('v')} = '{SCHEMA_VERSION}'"]
    for f in INVENTORY:
        c, t = f.name, _text(f.name)
        null = f"({c} IS NULL OR {t} = 'null')"
        if f.json_type == "map":
            conds.append(_map_ok_sql(c))
            continue
        if f.json_type == "int":
            lake = "BIGINT" if f.name == "ts" else f.lake_type
            ok = f"(TRY_CAST({t} AS {lake}) IS NOT NULL AND NOT regexp_matches({t}, '[.eE]'))"
        else:
            ok = f"starts_with({t}, '\"')"
        conds.append(f"({null} OR {ok})" if f.nullable else f"(NOT {null} AND {ok})")
    conds.append(f"TRY_CAST({_text('ts')} AS BIGINT) BETWEEN 0 AND {MAX_TS}")
    return " AND ".join(conds)


def _map_ok_sql(c: str) -> str:
    """An object of at most MAX_PROPS bounded strings (as ``collector.schema._props`` checks)."""
    m = f"TRY_CAST({c} AS MAP(VARCHAR, JSON))"
    return (
        f"(coalesce(json_type({c}) = 'OBJECT', false) AND {m} IS NOT NULL AND cardinality({m}) <= {MAX_PROPS} "
        f"AND coalesce(list_bool_and(list_transform(map_keys({m}), lambda k: length(k) BETWEEN 1 AND {MAX_PROP_KEY})),"
        " true) "
        # A JSON null value is a SQL NULL in the map: coalesce each test to false, not the list's to true.
        f"AND coalesce(list_bool_and(list_transform(map_values({m}), lambda v: coalesce(json_type(v) = 'VARCHAR' "
        f"AND length(v ->> '$') <= {MAX_TEXT}, false))), true))"
    )


def typed_select_sql() -> str:
    """The lake columns from the raw JSON columns (TRY_: rejected rows are computed too, then dropped)."""
    out = []
    for f in INVENTORY:
        c = f.name
        if f.name == "ts":
            out.append("TRY(make_timestamp(TRY_CAST(ts AS BIGINT) * 1000000)) AS ts")
        elif f.json_type == "map":
            out.append(f"TRY(json_transform({c}, '\"MAP(VARCHAR, VARCHAR)\"')) AS {c}")
        elif f.json_type == "int":
            out.append(f"TRY_CAST({c} AS {f.lake_type}) AS {c}")
        else:
            out.append(f"({c} ->> '$') AS {c}")
    return ", ".join(out)


def lake_range_error(event: Event) -> str | None:
    """What :meth:`Event.from_record` accepts but a lake column cannot hold."""
    for f in INVENTORY:
        value = getattr(event, f.name)
        if f.json_type != "int" or value is None:
            continue
        lo, hi = (0, MAX_TS) if f.name == "ts" else _INT_RANGES[f.lake_type]
        if not lo <= value <= hi:
            return f"field {f.name} is out of range"
    return None


def check_line(line: bytes) -> tuple[Event | None, str | None]:
    """(event, None) for a valid line, (None, reason) otherwise."""
    try:
        event = parse_line(line)
    except RecordError as exc:
        return None, str(exc)
    reason = lake_range_error(event)
    return (None, reason) if reason else (event, None)


def quarantine_text(line: bytes) -> str:
    """The rejected line as kept in quarantine.

    Values under keys that are not in the inventory are replaced: PRIVACY.md
    allows nothing outside the inventory at rest, and we cannot know what a
    foreign field holds (it could be an address).
    """
    text = line.decode("utf-8", "replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        allowed = set(FIELD_NAMES) | {"v"}
        data = {k: (v if k in allowed else REDACTED) for k, v in data.items()}
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text
