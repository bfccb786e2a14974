"""The Events API body (Plausible-compatible) → a validated :class:`Payload`.

Everything here is attacker-controlled; a bad body raises :class:`PayloadError`
naming the field, which the handler turns into a 400. Error messages never echo
the offending value back (it could be a token or an address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

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


@dataclass(frozen=True, slots=True)
class Payload:
    name: str
    url: str
    domain: str
    referrer: str | None
    engaged_ms: int | None
    scroll_depth: int | None
    hash_mode: bool


def _pick(body: dict[str, Any], short: str, long: str) -> Any:
    if short in body:
        return body[short]
    return body.get(long)


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(field, "must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise PayloadError(field, "must be a finite number")
    return float(value)


def parse_payload(raw: bytes) -> Payload:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PayloadError("body", "is not valid JSON (UTF-8)") from None
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object")

    name = _pick(body, "n", "name")
    if not isinstance(name, str) or not name.strip():
        raise PayloadError("n", "event name is required and must be a string")
    if len(name) > MAX_NAME:
        raise PayloadError("n", f"event name is longer than {MAX_NAME} characters")
    # Normalised before anything compares it ("engagement" below, the allowlist in
    # the pipeline): an encoded or full-width spelling is the same name.
    name = normalise(name).strip()
    if not name:
        raise PayloadError("n", "event name is required and must be a string")

    url = _pick(body, "u", "url")
    if not isinstance(url, str) or not url:
        raise PayloadError("u", "page URL is required and must be a string")
    if len(url) > MAX_URL:
        raise PayloadError("u", f"page URL is longer than {MAX_URL} characters")
    if not (url.startswith("http://") or url.startswith("https://") or url.startswith("file:")):
        raise PayloadError("u", "page URL must be an absolute http(s) URL")

    domain = _pick(body, "d", "domain")
    if not isinstance(domain, str) or not domain.strip():
        raise PayloadError("d", "site domain is required and must be a string")
    if len(domain) > MAX_DOMAIN * 4:
        raise PayloadError("d", "site domain is too long")

    referrer = _pick(body, "r", "referrer")
    if referrer is not None and not isinstance(referrer, str):
        raise PayloadError("r", "referrer must be a string or null")
    if referrer is not None and len(referrer) > MAX_URL:
        raise PayloadError("r", f"referrer is longer than {MAX_URL} characters")

    engaged = _number(_pick(body, "e", "engagement_time"), "e")
    depth = _number(_pick(body, "sd", "scroll_depth"), "sd")
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

    hash_mode = bool(body.get("h")) if isinstance(body.get("h"), bool | int) else False
    return Payload(
        name=name,
        url=url,
        domain=domain.strip().lower(),
        referrer=referrer or None,
        engaged_ms=engaged_ms,
        scroll_depth=scroll,
        hash_mode=hash_mode,
    )
