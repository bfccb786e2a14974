"""The Events API body (Plausible-compatible) → a validated :class:`Payload`.

Everything here is attacker-controlled; a bad body raises :class:`PayloadError`
naming the field, which the handler turns into a 400. Error messages never echo
the offending value back (it could be a token or an address).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from collector.props import PropDrop, PropsTooLong, RawProps, read_props
from collector.schema import MAX_ENGAGED_MS
from collector.scrub import normalise

MAX_URL = 2048
MAX_NAME = 120
MAX_DOMAIN = 253


class PayloadError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Payload(NamedTuple):
    """A validated body. A tuple rather than a frozen dataclass: one is built per request, and a
    frozen dataclass pays an ``object.__setattr__`` call per field (~3x the cost of a tuple)."""

    name: str
    url: str
    domain: str
    referrer: str | None
    engaged_ms: int | None
    scroll_depth: int | None
    hash_mode: bool
    props: RawProps = ()  # as sent: the pipeline keeps the site's keys and scrubs the values
    props_dropped: tuple[PropDrop, ...] = ()


# The keys Plausible's trackers send, short form first (as Plausible reads them).
_NAME, _URL, _DOMAIN, _REFERRER = ("n", "name"), ("u", "url"), ("d", "domain"), ("r", "referrer")
_ENGAGED, _DEPTH = ("e", "engagement_time"), ("sd", "scroll_depth")
# Plausible reads the first of m, meta, p, props that is there (m/meta: its older trackers).
_PROPS = ("m", "meta", "p", "props")
_URL_SCHEMES = ("http://", "https://", "file:")
_INFINITIES = (float("inf"), float("-inf"))


def _pick(body: dict[str, Any], keys: tuple[str, str]) -> Any:
    value = body.get(keys[0], _ABSENT)
    return body.get(keys[1]) if value is _ABSENT else value


_ABSENT: Any = object()


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(field, "must be a number")
    if value != value or value in _INFINITIES:
        raise PayloadError(field, "must be a finite number")
    return float(value)


@lru_cache(maxsize=1024)
def _normal_name(name: str) -> str:
    # Event names repeat (a few per site): each spelling is normalised once. Bounded (names are at most
    # MAX_NAME characters, so at most ~1024 x 120 characters), memory only.
    return normalise(name).strip()


def parse_payload(raw: bytes) -> Payload:
    """Parse and check the body in one pass: one JSON decode, each field looked up once."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PayloadError("body", "is not valid JSON (UTF-8)") from None
    if type(body) is not dict:
        raise PayloadError("body", "must be a JSON object")

    name = _pick(body, _NAME)
    if not isinstance(name, str) or not name.strip():
        raise PayloadError("n", "event name is required and must be a string")
    if len(name) > MAX_NAME:
        raise PayloadError("n", f"event name is longer than {MAX_NAME} characters")
    # Normalised before anything compares it ("engagement" below, the allowlist in
    # the pipeline): an encoded or full-width spelling is the same name.
    name = _normal_name(name)
    if not name:
        raise PayloadError("n", "event name is required and must be a string")

    url = _pick(body, _URL)
    if not isinstance(url, str) or not url:
        raise PayloadError("u", "page URL is required and must be a string")
    if len(url) > MAX_URL:
        raise PayloadError("u", f"page URL is longer than {MAX_URL} characters")
    if not url.startswith(_URL_SCHEMES):
        raise PayloadError("u", "page URL must be an absolute http(s) URL")

    domain = _pick(body, _DOMAIN)
    if not isinstance(domain, str) or not domain.strip():
        raise PayloadError("d", "site domain is required and must be a string")
    if len(domain) > MAX_DOMAIN * 4:
        raise PayloadError("d", "site domain is too long")

    referrer = _pick(body, _REFERRER)
    if referrer is not None:
        if not isinstance(referrer, str):
            raise PayloadError("r", "referrer must be a string or null")
        if len(referrer) > MAX_URL:
            raise PayloadError("r", f"referrer is longer than {MAX_URL} characters")

    engaged = _number(_pick(body, _ENGAGED), "e")
    depth = _number(_pick(body, _DEPTH), "sd")
    engaged_ms: int | None = None
    scroll: int | None = None
    if name == "engagement":
        if engaged is None:
            raise PayloadError("e", "engagement events need the engaged time in milliseconds")
        if engaged < 0:
            raise PayloadError("e", "engaged time cannot be negative")
        # One report counts at most 30 minutes (ARCHITECTURE.md: time on page).
        engaged_ms = int(min(engaged, MAX_ENGAGED_MS))
        if depth is not None:
            scroll = int(max(0.0, min(100.0, depth)))

    h = body.get("h")
    hash_mode = bool(h) if isinstance(h, bool | int) else False
    props: RawProps = ()
    props_dropped: tuple[PropDrop, ...] = ()
    for key in _PROPS:
        raw_props = body.get(key)
        if raw_props is not None:
            try:
                props, dropped = read_props(raw_props)
            except PropsTooLong as exc:
                raise PayloadError("p", str(exc)) from None
            props_dropped = tuple(dropped)
            break
    return Payload(
        name, url, domain.strip().lower(), referrer or None, engaged_ms, scroll, hash_mode, props, props_dropped
    )
