"""URL → scrubbed path and UTM values (PRIVACY.md rule 4).

Query strings and fragments are dropped after the UTM values are taken out.
Every path segment and every UTM value goes through :mod:`collector.scrub`
(normalised, then replaced by its placeholder when it holds an identifier), so
an e-mail address or a reset token in a URL never reaches disk, however it was
encoded. The stored path is the normalised one: ``/caf%C3%A9`` is kept as
``/café``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from collector.schema import MAX_PATH
from collector.scrub import scrub_unit, scrub_value

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

# Once decoded, these start a query string, a fragment or matrix parameters that
# arrived percent-encoded inside the path; like the real ones, they are dropped.
_SMUGGLED = re.compile(r"[?#;]")


def scrub_segment(segment: str) -> str:
    """One path segment: itself (normalised) or its placeholder."""
    return scrub_unit(segment) if segment else segment


def scrub_path(path: str) -> str:
    """Scrub every segment of a URL path (no query, no fragment expected).

    The path is split at its literal slashes first and each segment normalised
    on its own, so a token with an encoded ``/`` (``%2F``) is judged whole.
    """
    if not path:
        return "/"
    # Matrix parameters (;jsessionid=...) are another way to smuggle identifiers in a path.
    path = path.split(";", 1)[0]
    out: list[str] = []
    for raw in path.split("/"):
        segment = scrub_segment(raw)
        cut = _SMUGGLED.search(segment)
        if cut is not None:
            out.append(scrub_segment(segment[: cut.start()]))
            break
        out.append(segment)
    scrubbed = "/".join(out)
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
    # A UTM value is chosen by whoever wrote the link; still, one that carries an
    # identifier is stored as that identifier's placeholder (utm_content=:email),
    # never as itself.
    return scrub_value(value) or None


def extract_utm(query: str) -> Utm:
    if not query or "utm_" not in query.lower():
        return NO_UTM
    found: dict[str, str | None] = {}
    # parse_qsl decodes once the way forms encode (+ is a space); scrub_value decodes the rest.
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
