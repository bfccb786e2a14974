"""Hypothesis strategies: identifiers of every class, and the encodings an attacker wraps them in.

Tokens are drawn from a seeded random generator rather than shrinkable bytes:
what makes a token a token is that it is random (an all-``A`` base64 string is
not one), and the scrubber's rule for them is statistical (docs/privacy.md).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
from urllib.parse import quote

from hypothesis import strategies as st

from tests.privacy import needles
from tests.privacy.needles import Planted

_ALPHA = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _ALPHA + "0123456789"
# An address: a letter before the "@" and a domain of two letters or more, with
# or without a dot (jane@intranet); "@" or a look-alike.
_word = st.builds(str.__add__, st.text(_ALPHA, min_size=1, max_size=1), st.text(_ALNUM, max_size=8))
_local = st.builds(lambda a, mid, b: a + mid + b if mid else a, _word, st.sampled_from(["", ".", "_", "+", "-"]), _word)
_domain = st.builds(
    lambda first, rest: ".".join([first, *rest]),
    st.builds(str.__add__, st.text(_ALPHA, min_size=2, max_size=2), st.text(_ALNUM, max_size=8)),
    st.lists(_word, max_size=2),
)
_at = st.sampled_from(["@", "＠", "﹫", "(at)", " (at) ", "[at]", " [at] ", "[@]", "(@)", "@@", "(a)", "⒜", "@ "])
_plain_emails = st.builds(needles.email, _local, _domain, _at)
# Top-level domains of the Public Suffix List, and file extensions that are also one.
_TLDS = ["com", "org", "de", "co", "io", "uk", "info", "zip", "mov", "app"]


@st.composite
def spelled_emails(draw: st.DrawFn) -> Planted:
    """An address spelled out: "jane at example dot com", "jane-at-example-dot-com", "jane_at_example.com"."""
    local, labels = draw(_word), draw(st.lists(_word, min_size=1, max_size=2))
    sep = draw(st.sampled_from([" ", "-", "_"]))
    dot = draw(st.sampled_from([f"{sep}dot{sep}", f"{sep}DOT{sep}", " (dot) ", "[dot]", "."]))
    at = draw(st.sampled_from([f"{sep}at{sep}", f"{sep}AT{sep}"]))
    domain = dot.join([*labels, draw(st.sampled_from(_TLDS))])
    text = f"{local}{at}{domain}"
    return Planted("email", text, needles.pieces(f"{local}@{'.'.join(labels)}", local, *labels))


@st.composite
def quoted_emails(draw: st.DrawFn) -> Planted:
    """A quoted or emoji-ended local part: '"jane"@example.com', 'jane😀@example.com'."""
    local, domain = draw(_local), draw(_domain)
    spelled = draw(st.sampled_from([f'"{local}"@{domain}', f"{local}\U0001f600@{domain}", f"{local}@ {domain}"]))
    return Planted("email", spelled, needles.pieces(f"{local}@{domain}", local, domain))


emails = st.one_of(_plain_emails, spelled_emails(), quoted_emails())


@st.composite
def ipv4s(draw: st.DrawFn) -> Planted:
    addr = draw(st.ip_addresses(v=4))
    octets = str(addr).split(".")
    spelled = draw(
        st.sampled_from(
            [
                str(addr),
                "-".join(octets),  # EC2-style host names
                "_".join(octets),
                ".".join(o.zfill(3) for o in octets),
                f"::ffff:{addr}",
                f"{addr}:8080",
                ",".join(octets),
                ".".join(f"0x{int(o):02x}" for o in octets),  # what a URL parser reads as IPv4
                f"0x{int(octets[0]):x}.{octets[1]}.0x{int(octets[2]):X}.{octets[3]}",
            ]
        )
    )
    return needles.ip(str(addr), spelled)


@st.composite
def ipv6s(draw: st.DrawFn) -> Planted:
    # "::", "::1" and "::2" are nobody's address; the scrubber wants two hex
    # digits in an address, so that "d::" in "std::vector" stays.
    addr = draw(st.ip_addresses(v=6).filter(lambda a: sum(c not in ":." for c in str(a)) >= 2))
    assert isinstance(addr, ipaddress.IPv6Address)
    short, full = str(addr), addr.exploded
    spelled = draw(
        st.sampled_from(
            [
                short,
                full,
                short.upper(),
                f"[{short}]",
                f"{short}%eth0",  # a zone id
                f"[{short}]:443",
                full.replace(":", "-"),  # Windows' UNC spelling
            ]
        )
    )
    return needles.ip(short, spelled)


@st.composite
def phones(draw: st.DrawFn) -> Planted:
    cc = draw(st.sampled_from(["1", "33", "44", "49", "353", "852"]))
    a = draw(st.text("0123456789", min_size=2, max_size=4))
    b = draw(st.text("0123456789", min_size=3, max_size=4))
    c = draw(st.text("0123456789", min_size=3, max_size=4))
    dash = draw(st.sampled_from(["-", "\u2011", "\u2013", "\u2212"]))  # hyphen, non-breaking, en dash, minus
    form = draw(
        st.sampled_from(
            [
                "+{cc} {a} {b} {c}",
                "+{cc}-{a}-{b}-{c}",
                "+{cc}.{a}.{b}.{c}",
                "+{cc} ({a}) {b}-{c}",
                "+{cc}{a}{b}{c}",
                "({a}) {b}-{c}",
                "{a}{dash}{b}{dash}{c}",
                "+{cc}{dash}{a}{dash}{b}{dash}{c}",
                "{a}.{b}.{c}",
                "{a} {b} {c}",
                "00{cc} {a} {b}{c}",
                "0{a}/{b}{c}",
                "{cc} {a} {b} {c}",  # the "+" lost to a query string's form encoding
            ]
        )
    )
    return needles.phone(form.format(cc=cc, a=a, b=b, c=c, dash=dash))


@st.composite
def uuids(draw: st.DrawFn) -> Planted:
    value = draw(st.uuids())
    spelled = draw(st.sampled_from([str(value), str(value).upper(), f"{{{value}}}", f"urn:uuid:{value}"]))
    return needles.uuid_(value, spelled)


digit_runs = st.text("0123456789", min_size=6, max_size=20).map(needles.digit_run)


@st.composite
def tokens(draw: st.DrawFn) -> Planted:
    rnd: random.Random = draw(st.randoms(use_true_random=False))
    kind = draw(st.sampled_from(["hex", "HEX", "b64", "b64url", "jwt", "prefixed"]))
    if kind in ("hex", "HEX"):
        text = rnd.randbytes(rnd.randint(8, 32)).hex()
        text = text.upper() if kind == "HEX" else text
    elif kind == "jwt":
        header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
        body = base64.urlsafe_b64encode(json.dumps({"sub": rnd.randint(1, 10**9)}).encode()).rstrip(b"=")
        sig = base64.urlsafe_b64encode(rnd.randbytes(32)).rstrip(b"=")
        text = b".".join((header, body, sig)).decode()
    else:
        raw = rnd.randbytes(rnd.randint(32, 48))
        encoded = base64.b64encode(raw) if kind == "b64" else base64.urlsafe_b64encode(raw).rstrip(b"=")
        text = ("sk_live_" if kind == "prefixed" else "") + encoded.decode()
    return needles.token(text)


_plain_identifiers = st.one_of(emails, ipv4s(), ipv6s(), phones(), uuids(), digit_runs)
# Decoded base64 is read as ASCII text only (docs/privacy.md, known limits): an emoji in an address is not.
_b64_inner = _plain_identifiers.filter(lambda p: "\U0001f600" not in p.text)
base64_of_identifiers = st.builds(needles.b64_of, _b64_inner, st.booleans(), st.booleans())
identifiers = st.one_of(_plain_identifiers, tokens(), base64_of_identifiers)

# Invisible or control characters an attacker slips between an identifier's characters.
INVISIBLE = [
    "\x00",
    "\x1b",
    "\x07",
    "\n",
    "\r",
    "\t",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u202e",
    "\u00ad",
]


def fullwidth(text: str, which: list[bool]) -> str:
    """Some printable ASCII characters replaced by their full-width forms (NFKC maps them back)."""
    out = []
    for i, ch in enumerate(text):
        pick = which[i % len(which)] if which else False
        out.append(chr(ord(ch) + 0xFEE0) if pick and "!" <= ch <= "~" else ch)
    return "".join(out)


def percent_encode(text: str, rounds: int, mixed_case: bool) -> str:
    """Percent-encoded ``rounds`` times; with ``mixed_case``, every other escape in lower-case hex (%2f, %2F)."""
    for _ in range(rounds):
        text = quote(text, safe="")
        if mixed_case:
            parts = text.split("%")
            text = parts[0] + "".join(
                "%" + (p[:2].lower() if i % 2 else p[:2]) + p[2:] for i, p in enumerate(parts[1:])
            )
    return text


# The escapes other than percent-encoding that a person reads as the character:
# IIS's %uXXXX, JavaScript's and C's \uXXXX, \u{XX}, \xXX, HTML's character references.
ESCAPES = [
    lambda c: f"%u{ord(c):04X}",
    lambda c: f"\\u{ord(c):04x}",
    lambda c: f"\\u{{{ord(c):x}}}",
    lambda c: f"\\x{ord(c):02x}" if ord(c) < 256 else c,
    lambda c: f"&#{ord(c)};",
    lambda c: f"&#x{ord(c):X};",
    lambda c: f"&#{ord(c)}",  # a browser reads it without the ";" too
    lambda c: {"@": "&commat;", ".": "&period;", "-": "&hyphen;", ":": "&colon;"}.get(c, c),
]


def escape(text: str, which: list[int]) -> str:
    """Some characters (those at positions ``which``) replaced by one of :data:`ESCAPES`."""
    out = list(text)
    for n, i in enumerate(which):
        i %= len(out) or 1
        if out and len(out[i]) == 1:
            out[i] = ESCAPES[n % len(ESCAPES)](out[i])
    return "".join(out)


@st.composite
def encodings(draw: st.DrawFn, text: str) -> str:
    """``text`` plain, or with full-width characters, escapes, invisibles inserted, percent-encoded 1-3 times."""
    if draw(st.booleans()):
        text = fullwidth(text, draw(st.lists(st.booleans(), min_size=1, max_size=8)))
    if draw(st.booleans()):
        at = text.find("@")
        # The "@" first, when there is one: it is what a pattern looks for.
        text = escape(text, ([at] if at >= 0 else []) + draw(st.lists(st.integers(0, 200), max_size=3)))
    inserts = draw(st.lists(st.tuples(st.integers(0, 200), st.sampled_from(INVISIBLE)), max_size=4))
    for pos, ch in inserts:
        pos %= len(text) + 1
        text = text[:pos] + ch + text[pos:]
    return percent_encode(text, draw(st.integers(0, 3)), draw(st.booleans()))
