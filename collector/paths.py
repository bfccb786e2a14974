"""URL → scrubbed path and UTM values (PRIVACY.md rule 4).

Query strings and fragments are dropped after the UTM values are taken out.
Path segments that look like personal data or secrets are replaced by
placeholders, so an e-mail address or a reset token in a URL never reaches disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from collector.schema import MAX_PATH, MAX_TEXT

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

_EMAIL = re.compile(r"[^@/\s]+@[^@/\s]+\.[^@/\s]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Six or more digits: order numbers, phone numbers, user ids. Years (4 digits) stay.
_LONG_DIGITS = re.compile(r".*\d{6,}.*")
_HEX_TOKEN = re.compile(r"[0-9a-fA-F]{16,}")
# Base64/base64url or JWT-like runs: long, and mixing digits with letters.
_B64_TOKEN = re.compile(r"[A-Za-z0-9_\-+=.~]{20,}")
_HAS_DIGIT = re.compile(r"\d")
_HAS_ALPHA = re.compile(r"[A-Za-z]")


def scrub_segment(segment: str) -> str:
    if not segment:
        return segment
    decoded = unquote(segment)
    if "@" in decoded and _EMAIL.search(decoded):
        return ":email"
    if _UUID.search(decoded):
        return ":uuid"
    if _HEX_TOKEN.fullmatch(decoded) and _HAS_DIGIT.search(decoded):
        return ":token"
    if _B64_TOKEN.search(decoded) and _HAS_DIGIT.search(decoded) and _HAS_ALPHA.search(decoded):
        # A long run mixing letters and digits (not a readable slug with hyphens).
        for run in _B64_TOKEN.findall(decoded):
            if _HAS_DIGIT.search(run) and _HAS_ALPHA.search(run) and run.count("-") < len(run) // 6:
                return ":token"
    if _LONG_DIGITS.fullmatch(decoded):
        return ":id"
    if len(decoded) > MAX_TEXT:
        return ":long"
    return segment


def scrub_path(path: str) -> str:
    """Scrub every segment of a URL path (no query, no fragment expected)."""
    if not path:
        return "/"
    # Matrix parameters (;jsessionid=...) are another way to smuggle identifiers in a path.
    path = path.split(";", 1)[0]
    segments = path.split("/")
    scrubbed = "/".join(scrub_segment(s) for s in segments)
    if not scrubbed.startswith("/"):
        scrubbed = "/" + scrubbed
    if len(scrubbed) > MAX_PATH:
        scrubbed = scrubbed[:MAX_PATH]
    return scrubbed


@dataclass(frozen=True, slots=True)
class Utm:
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None


NO_UTM = Utm()


def _clean_utm(value: str) -> str | None:
    value = value.strip()[:MAX_TEXT]
    if not value:
        return None
    # A UTM value is chosen by whoever wrote the link; still, never keep one that
    # carries an e-mail address or a token.
    if scrub_segment(value) != value:
        return None
    return value


def extract_utm(query: str) -> Utm:
    if not query or "utm_" not in query:
        return NO_UTM
    found: dict[str, str | None] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        k = key.lower()
        if k in UTM_KEYS and k not in found:
            found[k] = _clean_utm(value)
    if not found:
        return NO_UTM
    return Utm(
        source=found.get("utm_source"),
        medium=found.get("utm_medium"),
        campaign=found.get("utm_campaign"),
        content=found.get("utm_content"),
        term=found.get("utm_term"),
    )
