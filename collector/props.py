"""Custom properties (PRIVACY.md inventory row "custom property", rule 4).

Two steps, like every visitor string. :func:`read_props` (in the payload parser)
takes Plausible's ``p``/``props`` object as its tracker sends it: scalars become
strings, objects, lists and blanks are dropped, at most :data:`MAX_PROPS` are
read. :func:`clean_props` (in the pipeline, once the site is known) keeps only
the keys the site's configuration allows and scrubs each value with the path
scrubber's rules: normalised first, then replaced by its placeholder when it
holds an identifier, a path scrubbed segment by segment, a URL reduced to host
and path (never a query or a fragment). The ``url`` of Plausible's own events is
reduced further: a download keeps the file name only, an outbound link the
destination host only. Every property left out is counted by reason.

How many distinct values a key may have per site and day is bounded at ingest
(aggregator/props.py): the collector is stateless and sees one request at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import orjson

from collector.paths import scrub_path, scrub_segment
from collector.schema import MAX_PROPS, MAX_TEXT
from collector.scrub import TOKEN, normalise, normalise_checked, scrub_host, scrub_value

PropDrop = Literal["unknown_key", "not_scalar", "empty", "too_many", "duplicate"]
PROP_DROP_REASONS: tuple[PropDrop, ...] = get_args(PropDrop)

#: What Plausible's ingestion refuses (a 400): longer keys or values are not "a property".
MAX_RAW_KEY = 300
MAX_RAW_VALUE = 2000

DOWNLOAD = "File Download"
OUTBOUND = "Outbound Link: Click"

RawProps = tuple[tuple[str, str], ...]


class PropsTooLong(ValueError):
    pass


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def read_props(value: Any) -> tuple[RawProps, list[PropDrop]]:
    """The payload's properties as (key, value) strings, and what was left out and why.

    Plausible's tracker sends an object; older ones sent it JSON-encoded as a string.
    A value that is not an object at all is no properties. Raises :class:`PropsTooLong`.
    """
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return (), ["not_scalar"]
    if value is None:
        return (), []
    if not isinstance(value, Mapping):
        return (), ["not_scalar"]
    out: list[tuple[str, str]] = []
    dropped: list[PropDrop] = []
    for key, raw in value.items():
        text = _scalar(raw)
        if len(key) > MAX_RAW_KEY or (text is not None and len(text) > MAX_RAW_VALUE):
            raise PropsTooLong(f"keys are at most {MAX_RAW_KEY} and values {MAX_RAW_VALUE} characters")
        if text is None and raw is not None:
            dropped.append("not_scalar")
        elif not key.strip() or text is None or not text.strip():
            dropped.append("empty")
        elif len(out) >= MAX_PROPS:
            dropped.append("too_many")
        else:
            out.append((key, text))
    return tuple(out), dropped


def _file_name(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return TOKEN
    return scrub_segment(path.rsplit("/", 1)[-1])


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return TOKEN
    return scrub_host(host)


def scrub_prop(key: str, value: str, event: str) -> str:
    """One property value as stored ("" if nothing is left).

    A URL or a path is split where it arrived split (the raw text, as for pages and
    referrers) and each part scrubbed on its own, so that an encoded ``%2F`` or ``%40``
    inside a part is judged with the part; only text that is a URL or a path once
    decoded, and not before, is split in its decoded form.
    """
    normal, readable = normalise_checked(value)
    if not readable:
        return TOKEN
    normal = normal.strip()
    raw = value.strip()
    if key == "url" and event in (DOWNLOAD, OUTBOUND):
        url = raw if ("://" in raw or raw.startswith("/")) else normal
        return (_file_name(url) if event == DOWNLOAD else _host(url))[:MAX_TEXT]
    if "://" in normal:
        # A URL: its host and its scrubbed path, as for a referrer; never the query or fragment.
        try:
            parts = urlsplit(raw if "://" in raw else normal)
            host = scrub_host(parts.hostname or "")
        except ValueError:
            return TOKEN
        return (host + (scrub_path(parts.path) if parts.path else ""))[:MAX_TEXT]
    if normal.startswith("/"):
        path = raw if raw.startswith("/") else normal
        return scrub_path(path.split("?", 1)[0].split("#", 1)[0])[:MAX_TEXT]
    return scrub_value(value)


def clean_props(
    raw: RawProps, allowed: Mapping[str, str], event: str, scrub: Callable[[str, str, str], str] = scrub_prop
) -> tuple[RawProps, list[PropDrop]]:
    """Allowlisted keys only (``allowed`` maps a normalised key to its configured spelling), values scrubbed.

    Sorted by key; a key sent twice in different spellings keeps its first value. ``scrub``:
    :func:`scrub_prop`, or a cached copy of it (the pipeline's).
    """
    kept: dict[str, str] = {}
    dropped: list[PropDrop] = []
    for key, value in raw:
        name = allowed.get(normalise(key).strip())
        if name is None:
            dropped.append("unknown_key")
            continue
        if name in kept:
            dropped.append("duplicate")  # "url" and "ｕｒｌ" are one key: the first one counts
            continue
        stored = scrub(name, value, event)
        if stored:
            kept[name] = stored
        else:
            dropped.append("empty")
    return tuple(sorted(kept.items())), dropped
