"""What a planted identifier looks like once stored, and how a test searches for it.

Independent of the product's own scrubber on purpose: a stored value is decoded
the way an attacker would read it (percent-decoding up to three times, NFKC,
invisible characters removed, case folded) and then searched for the identifier
and for its pieces (an e-mail's local part and domain, a UUID's groups, a
token's ends, a phone number's digits).
"""

from __future__ import annotations

import base64
import ipaddress
import unicodedata
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

# Shortest piece worth searching for: shorter ones occur everywhere by chance.
MIN_PIECE = 4


def read_as_attacker(value: str) -> str:
    for _ in range(3):
        value = unquote(value)
    value = unicodedata.normalize("NFKC", value)
    value = "".join(c for c in value if unicodedata.category(c)[0] != "C" and unicodedata.category(c)[0] != "M")
    return value.casefold()


def digits_of(value: str) -> str:
    """The digits of a (read) value, in order, as ASCII: what a phone number or an id leaves behind."""
    out = []
    for c in value:
        d = unicodedata.decimal(c, None)
        if d is not None:
            out.append(str(d))
    return "".join(out)


@dataclass(frozen=True)
class Planted:
    """One identifier as planted, with what must not be found afterwards."""

    kind: str
    text: str
    needles: tuple[str, ...]  # read_as_attacker() forms; none may occur in a stored value
    digits: str = ""  # if set: no stored value's digits may contain it

    def found_in(self, stored: str, baseline: str = "") -> list[str]:
        """The needles (or digit string) found in a stored value, ignoring those the baseline holds anyway."""
        read, base = read_as_attacker(stored), read_as_attacker(baseline)
        hits = [n for n in self.needles if n in read and n not in base]
        if self.digits and self.digits in digits_of(read) and self.digits not in digits_of(base):
            hits.append(f"digits {self.digits}")
        return hits


def pieces(*parts: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.casefold() for p in parts if len(p) >= MIN_PIECE))


def email(local: str, domain: str, at: str = "@") -> Planted:
    text = f"{local}{at}{domain}"
    return Planted("email", text, pieces(f"{local}@{domain}", local, domain))


def ip(address: str, spelled: str | None = None) -> Planted:
    addr = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    forms = [str(addr), addr.exploded]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        forms.append(str(addr.ipv4_mapped))
    spelled = spelled or address
    return Planted("ip", spelled, pieces(*forms, read_as_attacker(spelled)))


def phone(text: str) -> Planted:
    digits = digits_of(text)
    # The last seven digits are the subscriber number: finding them anywhere is a leak.
    return Planted("phone", text, pieces(read_as_attacker(text)), digits=digits[-7:])


def uuid_(value: uuid.UUID, spelled: str) -> Planted:
    groups = str(value).split("-")
    return Planted("uuid", spelled, pieces(str(value), value.hex, groups[0], groups[-1]))


def digit_run(digits: str) -> Planted:
    return Planted("id", digits, (), digits=digits)


def token(text: str) -> Planted:
    """Hex, base64/base64url or JWT: the whole token and its first and last eight characters."""
    return Planted("token", text, pieces(text, text[:8], text[-8:]))


def b64_of(inner: Planted, urlsafe: bool = False, padded: bool = True) -> Planted:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(inner.text.encode()).decode()
    if not padded:
        text = text.rstrip("=")
    return Planted(f"b64({inner.kind})", text, pieces(text) + inner.needles, inner.digits)
