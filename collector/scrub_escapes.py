"""The escapes and spellings :mod:`collector.scrub` reads besides percent-encoding.

Each is a way to write a character so that a person still reads it and a
pattern does not: an escape of another syntax (``%u0040``, ``\\u0040``,
``&#64;``), a bidi override that shows text in another order than it is
stored, a host label in punycode. docs/privacy.md lists them.
"""

from __future__ import annotations

import html
import re

# The bidi overrides make text display in another order than it is stored:
# "jane\u202emoc.elpmaxe@" shows as "jane@example.com". Removed, they would leave
# the reversed address, so a unit that held one is not readable (a :token).
_OVERRIDES = ("\u202d", "\u202e")


def has_override(text: str) -> bool:
    return not text.isascii() and any(o in text for o in _OVERRIDES)


# The other escapes a person reads as the character they stand for, decoded like
# percent-escapes: IIS's "%u0040"; JavaScript's and C's "\u0040", "\u{40}", "\x40";
# HTML's character references "&#64;", "&#x40;" (a browser reads them without the
# ";" too) and the named ones with their ";" ("&commat;"; without it, "&not" in
# "tips&notes" would be one).
_ESCAPE = re.compile(
    r"%u([0-9a-f]{4})|\\u([0-9a-f]{4})|\\u\{([0-9a-f]{1,6})\}|\\x([0-9a-f]{2})"
    r"|&#(?:([0-9]{1,7})|x([0-9a-f]{1,6}));?|&[a-z][a-z0-9]{1,31};",
    re.IGNORECASE,
)


def _unescape_one(m: re.Match[str]) -> str:
    decimal = m.group(5)
    digits = decimal or next((g for g in m.groups() if g), None)
    if digits is None:
        return html.unescape(m.group())  # a named reference; an unknown name stays as it is
    cp = int(digits, 10 if decimal else 16)
    # A code point that is none (or NUL) reads as nothing a pattern can match: U+FFFD, a :token.
    return chr(cp) if 0 < cp <= 0x10FFFF else "\ufffd"


def unescape(text: str) -> str:
    """``text`` with the escapes above decoded, one level (the scrubber's rounds repeat it)."""
    if "\\" in text or "&" in text or "%u" in text or "%U" in text:
        return _ESCAPE.sub(_unescape_one, text)
    return text


def unpunycode(host: str) -> str | None:
    """The host with its ``xn--`` labels decoded; ``None`` if one is not punycode at all."""
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                return None
        labels.append(label)
    return ".".join(labels)
