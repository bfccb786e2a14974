"""The one scrubber every visitor-supplied string goes through (PRIVACY.md rule 4).

Page paths, referrer hosts and paths, UTM values, custom event names (and custom
property values, when they come) are attacker-controlled. Each unit (a path
segment, a host, a whole value) is first *normalised*: rounds of "remove
invisible characters, NFKC, percent-decode, NFKC, remove invisible characters"
until it no longer changes, at most :data:`MAX_DECODE_ROUNDS`. Only then is it
*scrubbed*: a unit holding an e-mail address, an IP literal, a phone number, a
UUID, a long digit run or a token (also base64 that decodes to any of these) is
replaced as a whole by its placeholder, so no piece of the identifier survives
beside it. A unit that is still changing after the last round, or holds bytes
that are not UTF-8, is replaced too (``:token``).

Normalising first is what makes the rules hold: ``%2540``, a full-width ``＠``,
a NUL or a zero-width space inside a digit run, or a ``%0A`` that once stopped a
``.``-based pattern, are all gone before any pattern looks. The patterns never
use ``.`` and never nest quantifiers (possessive repeats where a class repeats),
so their cost is linear in the input. The detectors live in
:mod:`collector.identifiers`, the other escapes in :mod:`collector.scrub_escapes`;
this module owns the order of the steps and the base64 look-inside. docs/privacy.md lists every class and threshold.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote

from collector.identifiers import detection_form, identify
from collector.schema import MAX_TEXT
from collector.scrub_escapes import has_override, unescape, unpunycode

#: Percent-decoding rounds before a value counts as deliberately over-encoded.
#: Browsers encode once; links pasted through a redirector or a mail client
#: twice or three times. Anything still decodable after this many rounds is
#: hostile and is replaced as a whole (``:token``) rather than stored half-decoded.
MAX_DECODE_ROUNDS = 6

EMAIL, IP, PHONE, UUID, ID, TOKEN, LONG = ":email", ":ip", ":phone", ":uuid", ":id", ":token", ":long"
PLACEHOLDERS = frozenset({EMAIL, IP, PHONE, UUID, ID, TOKEN, LONG})

# Categories removed outright: controls (NUL, ESC, BEL, CR, LF, TAB…), format
# characters (zero-width, bidi controls, soft hyphen…), line/paragraph separators
# and lone surrogates. None is visible, so each can only hide what it splits.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Unicode's Default_Ignorable_Code_Point ranges that are not Cf (variation
# selectors, the combining grapheme joiner, Hangul fillers, Mongolian free
# variation selectors, tags…): invisible too, so removed too.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


@lru_cache(maxsize=4096)
def _invisible(ch: str) -> bool:
    if unicodedata.category(ch) in _DROP_CATEGORIES:
        return True
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _IGNORABLE_RANGES)


def _strip_invisible(text: str) -> str:
    # isprintable() is False for every dropped character (and for some kept
    # ones, such as non-ASCII spaces), so it is a cheap exact pre-check for the
    # common case; the ignorable ranges are all non-ASCII.
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch for ch in text if not _invisible(ch))


def _nfkc(text: str) -> str:
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


def _round(text: str) -> tuple[str, bool]:
    """One round of normalisation, and whether it met a bidi override."""
    # Invisible characters and full-width forms go first too: a NUL or a "％" inside
    # an escape ("%\x0040", "％40") must not keep it from decoding.
    override = has_override(text)
    text = _nfkc(_strip_invisible(text))
    text = unescape(text)
    if "%" in text:
        # errors="replace": bytes that are not UTF-8 become U+FFFD, never raw bytes.
        text = unquote(text, errors="replace")
    override = override or has_override(text)
    return _strip_invisible(_nfkc(text)), override


def normalise_checked(text: str) -> tuple[str, bool]:
    """``(normal form, readable)``.

    Not readable: still changing after :data:`MAX_DECODE_ROUNDS` rounds,
    holding bytes that are not UTF-8 (U+FFFD), or having held a bidi override
    (the text displays in another order than it is stored). Each is a unit an attacker
    built to be read by a person and not by a pattern — an escape split across
    two rounds of encoding destroys the "@" it carried, and leaves both halves
    of the address — so callers replace it whole.
    """
    overridden = False
    for _ in range(MAX_DECODE_ROUNDS):
        nxt, override = _round(text)
        overridden = overridden or override
        if nxt == text:
            return text, "\ufffd" not in text and not overridden
        text = nxt
    return text, False


def normalise(text: str) -> str:
    """Percent-decoded until stable (bounded), NFKC, invisible characters removed.

    A query value is first decoded by :func:`urllib.parse.parse_qsl` (``+`` is a
    space there, as in every form encoding); the further rounds here are plain
    percent-decoding, so a ``+`` that arrived as ``%2B`` stays a plus.
    """
    return normalise_checked(text)[0]


def placeholder_for(text: str, depth: int = 0) -> str | None:
    """The placeholder of the first identifier class found in normalised ``text``, or ``None``."""
    found = identify(text)
    if found is None and depth < MAX_B64_DEPTH and _hides_identifier(text, depth):
        return TOKEN
    return found


# Base64 inside base64 is looked into this many levels deep.
MAX_B64_DEPTH = 2
# The two alphabets' runs are looked at separately, so that a word joined to a
# token by "-" or "_" ("post-YUBiLmM") does not shift the token's groups.
_B64_STD = re.compile(r"[A-Za-z0-9+/]{4,}")
_B64_URL = re.compile(r"[A-Za-z0-9_\-]{4,}")
_CAPITAL = re.compile(r"[A-Z]")


def _b64_runs(text: str) -> set[str]:
    """The runs worth decoding: those with a capital letter.

    In base64 of ASCII text every group's first character encodes the top six
    bits of a byte below 0x80; it is a capital unless that byte is a lower-case
    letter from "h" on. An "@", a dot, a dash, a colon, a digit, a hex letter
    or a capital in the encoded text each make one, so the base64 of every
    identifier class has a capital, and an all-lower-case slug needs no decoding.
    """
    if _CAPITAL.search(text) is None:
        return set()
    runs = set(_B64_STD.findall(text))
    for run in _B64_URL.findall(text):
        if "-" in run or "_" in run:
            runs.add(run.replace("-", "+").replace("_", "/"))
    return {r for r in runs if _CAPITAL.search(r)}


def _hides_identifier(text: str, depth: int) -> bool:
    """Whether a base64 or base64url run in ``text`` decodes to text that holds an identifier.

    However short: ``YUBiYw`` is ``a@bc``. The run is tried at each of the four
    alignments (a prefix glued to it shifts the groups), and a few garbled bytes
    at either end are ignored. What is left must read as text — ASCII letters,
    digits, spaces, the punctuation of addresses and URLs, at least three
    quarters of the bytes — and an e-mail found in it needs a letter before the
    ``@`` and two after: that is what keeps ordinary words, which decode to
    noise with the odd ``@`` in it (``EVENTNAME`` holds ``53@0``), from reading
    as base64.
    """
    for run in _b64_runs(text):
        for offset in range(min(4, len(run) - 3)):
            chunk = run[offset:]
            cut = len(chunk) % 4
            chunk = chunk[:-1] if cut == 1 else chunk + "=" * ((4 - cut) % 4)
            try:
                raw = binascii.a2b_base64(chunk)
            except binascii.Error:
                continue
            decoded = _trim(raw.decode("utf-8", errors="replace"))
            normal = normalise(decoded)
            if 4 * len(decoded.encode()) < 3 * len(raw) or not _TEXT.fullmatch(normal):
                continue
            found = placeholder_for(normal, depth + 1)
            if found == EMAIL and not _PLAUSIBLE_EMAIL.search(detection_form(normal)):
                continue
            if found is not None:
                return True
    return False


_TEXT = re.compile(r"[\w\s@.+\-:/=&?,;()\[\]#%!'\"*$]{4,}", re.ASCII)
# A letter before the "@" (or before the quote that closes a local part), two after.
_PLAUSIBLE_EMAIL = re.compile(
    r"[a-z][\w.+\-]*+[\"']?+@[\w.\-]*?[a-z][\w.\-]*?[a-z]|[a-z]\s++@\s++[a-z]", re.ASCII | re.IGNORECASE
)


def _garbled(ch: str) -> bool:
    return ch == "\ufffd" or not ch.isprintable()


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < 3 and start < end and _garbled(text[start]):
        start += 1
    while end > start and len(text) - end < 3 and _garbled(text[end - 1]):
        end -= 1
    return text[start:end]


def scrub_unit(text: str) -> str:
    """One unit (a path segment, a value): normalised, then itself or its placeholder; capped."""
    normal, readable = normalise_checked(text)
    if not readable:
        return TOKEN
    found = placeholder_for(normal)
    if found is not None:
        return found
    if len(normal) > MAX_TEXT:
        return LONG
    return normal


def scrub_value(text: str) -> str:
    """A free-text value (UTM value, custom event name, custom property value): ``""`` if nothing is left.

    A value that carries an identifier is stored as the placeholder alone (not
    dropped): the report then shows that some link carries identifiers, without
    showing any of it. Values longer than the cap are cut, after scrubbing.
    """
    normal, readable = normalise_checked(text)
    if not readable:
        return TOKEN
    normal = normal.strip()
    found = placeholder_for(normal) if normal else None
    return found if found is not None else normal[:MAX_TEXT]


def scrub_host(host: str) -> str:
    """A referrer host: lowercase, normalised; an IP literal in any spelling becomes ``:ip``."""
    if not host:
        return ""
    normal, readable = normalise_checked(host)
    if not readable:
        return TOKEN
    # What browsers treat as a dot in a host name (IDNA maps these to "."), and no
    # trailing root dot: "example.com." is "example.com".
    normal = normal.translate(_HOST_DOTS).lower().strip().rstrip(".")
    if not normal:
        return ""
    if _is_ip_host(normal):
        return IP
    found = placeholder_for(normal)
    if found is None and "xn--" in normal:
        # Browsers send an internationalised name as punycode: what it spells
        # ("٤١٥٥٥٥٠١٠٠", a phone number in Arabic-Indic digits) is judged too.
        shown = unpunycode(normal)
        found = TOKEN if shown is None else identify(normalise(shown))
    if found is not None:
        return found
    if not _HOST_NAME.fullmatch(normal):
        # Not a host name (letters, digits, "-" and "."): "=", "+", "_", "%" or a
        # space are what base64 and other encodings leave in a host an attacker chose.
        return TOKEN
    return normal[:MAX_TEXT]


_HOST_NAME = re.compile(r"[^\W_]+(?:[.\-]+[^\W_]+)*")
_HOST_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _is_ip_host(host: str) -> bool:
    """An IP literal as a URL host: v6 (bracketed, with a zone), or v4 in any form a URL parser accepts.

    The WHATWG URL standard reads a host whose last label is a number (decimal,
    ``0x`` hex or octal) as an IPv4 address: ``http://3232235777/`` and
    ``http://0xC0A80101/`` are 192.168.1.1. Windows writes v6 literals as
    ``2001-db8--1.ipv6-literal.net``.
    """
    bare = host.strip("[]").split("%", 1)[0]
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    if bare.endswith(".ipv6-literal.net"):
        return True
    last = bare.rsplit(".", 1)[-1]
    if last.isdigit():
        return True
    return last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])
