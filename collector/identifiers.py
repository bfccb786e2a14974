"""Detectors of the identifier classes in *normalised* text (see :mod:`collector.scrub`).

:func:`identify` answers the placeholder of the first class found anywhere in a
unit, in this order: ``:email``, ``:uuid``, ``:ip``, ``:phone``, ``:token`` (hex,
JWT), ``:id`` (digit runs), ``:token`` (random-looking runs, base64 that decodes
to text holding any of these). The patterns run on a *detection form* of the
text in which look-alike characters are folded (every Unicode digit to its ASCII
digit, dash-like characters to ``-``, dot-like to ``.``, ``(at)``/``[at]`` to
``@``, combining marks removed), so ``4́1́5́…`` is still a digit run. That form
is only looked at, never stored.

Every pattern is linear: character classes with possessive repeats, no ``.``,
no nested quantifiers. Cheap pre-checks skip a detector when the character it
needs (an ``@``, a digit, a colon) is absent.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from contextlib import suppress
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

# Six or more digits in a row: order, customer and phone numbers, timestamps,
# card numbers. Five and fewer stay: years, page numbers, `/p/12345`-style
# article ids and ZIP-sized codes identify no one by themselves.
MIN_ID_DIGITS = 6
# A number written with separators ("+1 (415) 555-0100", "030/1234567") is a
# phone number from seven digits on: the shortest subscriber numbers in use.
MIN_PHONE_DIGITS = 7
# Hex runs this long are tokens (hashes, session ids, keys); short ones (a git
# short hash, a colour) are not identifiers.
MIN_HEX_TOKEN = 16
# A base64/base64url run this long that looks random (see _random_looking) is a token.
MIN_RANDOM_TOKEN = 16

# "(at)", "[at]", "{a}", "[@]", "<@>": the bracketed spellings of "@" (``⒜`` is "(a)" after NFKC);
# "(dot)", "[dot]": of ".".
_AT_WORD = re.compile(r"\s*+[(\[{<]\s*+(?:at|a|@)\s*+[)\]}>]\s*+", re.IGNORECASE)
_DOT_WORD = re.compile(r"\s*+[(\[{<]\s*+dot\s*+[)\]}>]\s*+", re.IGNORECASE)
_AT_RUN = re.compile(r"@{2,}+")
# An address spelled out in words: "jane at example dot com", "jane-at-example-dot-com",
# "jane_at_example.com". "at" must be a word of its own between two words (not between
# dots: ".at." is Austria in a host name), and the
# domain after it must end in "dot <word>" or in a real top-level domain
# (:func:`_spelled_email`), so that "look-at-this.html" stays.
_SPELLED_AT = re.compile(r"[\s_\-]at[\s_\-]", re.IGNORECASE)
_SPELLED_EMAIL = re.compile(
    r"(?<![^\W_])[^\W_]++[\s_\-]++at[\s_\-]++([^\W_]++(?:(?:[\s_\-.]++dot[\s_\-.]++|\.)[^\W_]++)++)",
    re.IGNORECASE,
)
# A character of an address on each side of an "@", with or without a dot in the
# domain; or " @ " between two words.
# Before it, anything that can end a local part (a quote: "jane"@; an emoji); after
# it, anything that can start a domain. A space on one side only is an address
# too ("jane@ example", "jane @example.com"), except before a handle with no
# dot ("follow @onecloud").
_EMAIL = re.compile(r"[^\s@<>()\[\]{},;:/\\]@[^\s@<>()\]{},;:/\\.]|\w\s++@\s++\w|[^\s@]@\s++\w|\w\s++@[\w\-]++\.\w")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
# Dotted, dashed (10-0-0-1, as in EC2 host names) or underscored quad, one separator throughout.
_IPV4 = re.compile(rf"(?<![0-9]){_OCTET}([.\-_,]){_OCTET}\1{_OCTET}\1{_OCTET}(?![0-9])")
# What a URL parser reads as IPv4 when a part is written in hex: 0x7f.0x0.0x0.0x1, 0x7f.1
# (the parts may be decimal, octal or 0x-hex; see _numeric_v4).
_V4_PART = r"(?:0x[0-9a-f]*+|[0-9]++)"
_IPV4_NUMERIC = re.compile(rf"(?<![0-9A-Za-z.]){_V4_PART}(?:\.{_V4_PART}){{1,3}}+(?![0-9A-Za-z])", re.IGNORECASE)
_V6_CANDIDATE = re.compile(r"[0-9a-f]*+(?::[0-9a-f.]*+){2,}+", re.IGNORECASE)
_V6_DASHED = re.compile(r"[0-9a-f]{1,4}(?:-[0-9a-f]{0,4}){2,7}", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![0-9A-Za-z])\+?+[0-9(][0-9\s.\-()/+]*+")
_DATE_PREFIX = re.compile(
    r"(?:19|20)[0-9]{2}[-./][0-9]{1,2}[-./][0-9]{1,2}(?![0-9])|[0-9]{1,2}[-./][0-9]{1,2}[-./](?:19|20)[0-9]{2}(?![0-9])"
)
_GROUPS = re.compile(r"[0-9]++")
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
_DIGIT = re.compile(r"[0-9]")
_CAPITAL = re.compile(r"[A-Z]")
_DIGIT_RUN = re.compile(rf"[0-9]{{{MIN_ID_DIGITS},}}")
_HEX_RUN = re.compile(rf"[0-9a-f]{{{MIN_HEX_TOKEN},}}", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}")
_RANDOM_RUN = re.compile(rf"[A-Za-z0-9+/=_\-]{{{MIN_RANDOM_TOKEN},}}")
_PIECE_SPLIT = re.compile(r"[+/=_\-]")


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """One non-ASCII character of the detection form."""
    if unicodedata.category(ch)[0] == "M":
        return ""
    digit = unicodedata.decimal(ch, None)
    if digit is not None:
        return str(digit)
    if ch in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2043":
        return "-"
    if ch in "\u3002\uff0e\uff61\u2024\u00b7\u2027":
        return "."
    if ch in "\uff20\ufe6b":
        return "@"
    if ch in "\uff1a\ufe55\u2236":
        return ":"
    return ch


def detection_form(text: str) -> str:
    if not text.isascii():
        text = "".join(_fold_char(ch) for ch in text)
    if "(" in text or "[" in text or "{" in text or "<" in text:
        text = _DOT_WORD.sub(".", _AT_WORD.sub("@", text))
    if "@@" in text:
        text = _AT_RUN.sub("@", text)
    return text


def identify(text: str) -> str | None:
    """The placeholder of the first identifier class in ``text`` (already normalised), or ``None``."""
    if not text:
        return None
    d = detection_form(text)
    if "@" in d and _EMAIL.search(d):
        return ":email"
    if _SPELLED_AT.search(d) and _spelled_email(d):
        return ":email"
    has_digit = _DIGIT.search(d) is not None
    if "-" in d and _UUID.search(d):
        return ":uuid"
    if _has_ip(d, has_digit):
        return ":ip"
    if has_digit and _has_phone(d):
        return ":phone"
    if _HEX_RUN.search(d) or ("eyJ" in d and _JWT.search(d)):
        return ":token"
    if has_digit and _DIGIT_RUN.search(d):
        return ":id"
    # The random-looking rules need digits or capitals: an all-lower-case slug has neither.
    if len(d) >= MIN_RANDOM_TOKEN and (has_digit or _CAPITAL.search(d)):
        if any(_random_looking(run) for run in _RANDOM_RUN.findall(d)):
            return ":token"
    return None


def _spelled_email(d: str) -> bool:
    for m in _SPELLED_EMAIL.finditer(d):
        domain = m.group(1)
        if re.search(r"[\s_\-.]dot[\s_\-.]", domain, re.IGNORECASE):
            return True
        if _is_tld(domain.rsplit(".", 1)[-1]):
            return True
    return False


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


@lru_cache(maxsize=1024)
def _is_tld(label: str) -> bool:
    """Whether ``label`` is a top-level domain of the Public Suffix List (``com``, ``de``, ``zip``; not ``html``)."""
    return "." not in label and _public_suffixes().is_public(label.lower())


def _numeric_v4(candidate: str) -> bool:
    """2-4 dotted numbers, one of them 0x-hex, that a URL parser reads as an IPv4 address."""
    parts = candidate.lower().split(".")
    if not any(p.startswith("0x") for p in parts):
        return False  # all-decimal is a version number ("1.2.3") or a quad, matched above
    values = []
    for p in parts:
        if p.startswith("0x"):
            values.append(int(p[2:] or "0", 16))
        elif len(p) > 1 and p.startswith("0"):
            if any(c in "89" for c in p):
                return False
            values.append(int(p, 8))
        else:
            values.append(int(p))
    *head, last = values
    return all(v <= 255 for v in head) and last < 256 ** (5 - len(values))


def _has_ip(d: str, has_digit: bool) -> bool:
    if has_digit and _IPV4.search(d):
        return True
    if has_digit and "0x" in d.lower() and any(_numeric_v4(m.group()) for m in _IPV4_NUMERIC.finditer(d)):
        return True
    if d.count(":") >= 2:
        for m in _V6_CANDIDATE.finditer(d):
            if _looks_v6(m.group()):
                return True
    if "--" in d or d.count("-") >= 7:
        # Windows' UNC spelling of a v6 literal: 2001-db8--1 (a zone would follow as "s").
        for m in _V6_DASHED.finditer(d):
            dashed = m.group()
            if "--" in dashed or dashed.count("-") == 7:
                with suppress(ValueError):
                    ipaddress.IPv6Address(dashed.replace("-", ":"))
                    return True
    return False


def _looks_v6(candidate: str) -> bool:
    candidate = candidate.strip(".")
    groups = candidate.split(":")
    # An address glued to letters before or after ("cafe2001:db8::1"): keep the
    # four hex digits next to the colon, which is all a group can hold.
    if len(groups[0]) > 4:
        groups[0] = groups[0][-4:]
    if len(groups[-1]) > 4 and "." not in groups[-1]:
        groups[-1] = groups[-1][:4]
    if sum(len(g) for g in groups) < 2:
        return False  # "d::" in "std::vector" is no address (nor is "::1" anyone's)
    try:
        ipaddress.IPv6Address(":".join(groups))
        return True
    except ValueError:
        pass
    # Not valid, but shaped like one (or like a MAC address, also an identifier):
    # three or more colons between groups of at most four hex digits.
    return len(groups) >= 4 and all(len(g) <= 4 and "." not in g for g in groups) and sum(map(bool, groups)) >= 3


def _has_phone(d: str) -> bool:
    for m in _NUMBER.finditer(d):
        run = m.group()
        date = _DATE_PREFIX.match(run)
        if date is not None and not run.startswith("+"):
            run = run[date.end() :]  # "2024-05-12" is a date, and what follows is judged alone
        if _phone_shaped(run.strip().rstrip(".-()/+")):
            return True
    return False


def _phone_shaped(run: str) -> bool:
    """Whether a run of digits and separators is written the way phone numbers are.

    A leading ``+`` or ``(`` with seven digits is one. Without, it takes three or
    more groups (``415-555-0100``, ``44 20 7946 0958``, ``2000-2000-2000``), or two that are not a
    range of years (``5555-1234``, but not ``2023-2024``). A single group is a
    plain digit run: ``:id`` from six digits.
    """
    groups = _GROUPS.findall(run)
    if sum(len(g) for g in groups) < MIN_PHONE_DIGITS:
        return False
    if run.startswith(("+", "(")):
        return True
    if len(groups) < 2 or (len(groups) == 2 and all(_YEAR.fullmatch(g) for g in groups)):
        return False  # a range of years ("2023-2024"); three "years" in a row are a number
    return len(groups) >= 3 or all(len(g) >= 3 for g in groups)


def _random_looking(run: str) -> bool:
    """A base64/base64url run that is a token, not a slug such as ``iphone-15-pro-max-review``.

    Slugs are words and numbers joined by separators: inside a word letters and
    digits rarely alternate (``h264``, ``covid19`` once), and words are lower
    case or Capitalised. Random tokens alternate often, or are upper case about
    half the time. Measured on random base64url: none of 32 or more characters,
    about 1 in 250 of 22 and 1 in 50 of 16 characters passes as a slug;
    CamelCase names heavy with acronyms (``XMLHttpRequestUpload``) are the
    false positives.
    """
    transitions = upper = lower = 0
    for piece in _PIECE_SPLIT.split(run):
        u = sum(1 for c in piece if c.isupper())
        low = sum(1 for c in piece if c.islower())
        upper, lower = upper + u, lower + low
        if len(piece) < 6:
            continue  # "b2b", "h264", "x86": short words with digits, not randomness
        if len(piece) >= 12 and u and low and u + low < len(piece):
            return True  # upper, lower and digits in one long piece
        prev = piece[0].isdigit()
        for c in piece:
            if c.isdigit() != prev:
                transitions += 1
                prev = not prev
    letters = upper + lower
    if transitions >= 3:
        return True
    # 30-70 % upper case; or, in a long run, anything short of all capitals
    # (CamelCase stays near one capital per word, under 30 %).
    return letters >= 10 and 3 * letters <= 10 * upper and (10 * upper <= 7 * letters or (letters >= 20 and lower >= 3))
