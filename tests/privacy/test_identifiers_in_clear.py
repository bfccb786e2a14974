"""Issue 12's "identifiers stored in clear": each attack, through the real pipeline, stores no identifier.

Every case names the field the identifier was planted in and the placeholder it
must become there, and then checks that no stored text field holds the
identifier or a piece of it (read the way an attacker would: percent-decoded
three times, NFKC, invisible characters removed).
"""

from __future__ import annotations

import pytest

from collector.pipeline import Dropped
from collector.uavocab import vocabulary
from collector.useragent import UAParser
from tests.privacy.conftest import SITE, Build, stored_strings
from tests.privacy.needles import Planted, email, ip, phone, token

JANE = email("jane.doe", "example.com")
CASES: list[tuple[str, dict[str, object], str, str, Planted]] = [
    # (name, body, field, stored value, planted)
    ("email %2540 in path", {"u": f"https://{SITE}/u/jane.doe%2540example.com"}, "path", "/u/:email", JANE),
    (
        "email %2540 in referrer path",
        {"u": f"https://{SITE}/", "r": "https://mail.partner.example/inbox/jane.doe%2540example.com"},
        "referrer_path",
        "/inbox/:email",
        JANE,
    ),
    (
        "email encoded three times in utm_content",
        {"u": f"https://{SITE}/?utm_content=jane.doe%252540example.com"},
        "utm_content",
        ":email",
        JANE,
    ),
    ("full-width at in path", {"u": f"https://{SITE}/u/jane.doe＠example.com"}, "path", "/u/:email", JANE),
    (
        "dotless domain in path",
        {"u": f"https://{SITE}/u/jane@intranet"},
        "path",
        "/u/:email",
        email("jane", "intranet"),
    ),
    ("IPv4 in path", {"u": f"https://{SITE}/host/203.0.113.77"}, "path", "/host/:ip", ip("203.0.113.77")),
    (
        "IPv6 in path",
        {"u": f"https://{SITE}/host/2001:db8::8a2e:370:7334"},
        "path",
        "/host/:ip",
        ip("2001:db8::8a2e:370:7334"),
    ),
    (
        "IPv4 as referrer host",
        {"u": f"https://{SITE}/", "r": "http://203.0.113.77/admin"},
        "referrer_host",
        ":ip",
        ip("203.0.113.77"),
    ),
    (
        "IPv6 as referrer host",
        {"u": f"https://{SITE}/", "r": "http://[2001:db8::8a2e:370:7334]:8080/"},
        "referrer_host",
        ":ip",
        ip("2001:db8::8a2e:370:7334"),
    ),
    (
        "IPv4 in utm_content",
        {"u": f"https://{SITE}/?utm_content=203.0.113.77"},
        "utm_content",
        ":ip",
        ip("203.0.113.77"),
    ),
    (
        "IPv6 in utm_content",
        {"u": f"https://{SITE}/?utm_content=2001:db8::8a2e:370:7334"},
        "utm_content",
        ":ip",
        ip("2001:db8::8a2e:370:7334"),
    ),
    ("phone in path", {"u": f"https://{SITE}/call/+1-415-555-0100"}, "path", "/call/:phone", phone("+1-415-555-0100")),
    (
        "phone in utm_medium",
        {"u": f"https://{SITE}/?utm_medium=%2B1%20415%20555%200100"},
        "utm_medium",
        ":phone",
        phone("+1 415 555 0100"),
    ),
    (
        "phone in utm_medium, + as the form encoding's space",
        {"u": f"https://{SITE}/?utm_medium=+1+415+555+0100"},
        "utm_medium",
        ":phone",
        phone("+1 415 555 0100"),
    ),
    (
        "short base64 e-mail in utm_content",
        {"u": f"https://{SITE}/?utm_content=YUBiLmM="},
        "utm_content",
        ":token",
        email("a", "b.c"),
    ),
    (
        "%0A after a digit run",
        {"u": f"https://{SITE}/orders/4155551234%0A"},
        "path",
        "/orders/:id",
        phone("4155551234"),
    ),
    (
        "%0a before a hex token",
        {"u": f"https://{SITE}/reset/%0adeadbeefcafe0123"},
        "path",
        "/reset/:token",
        token("deadbeefcafe0123"),
    ),
]


@pytest.mark.parametrize(("body", "field", "stored", "planted"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_identifier_becomes_its_placeholder(
    build_event: Build, body: dict[str, object], field: str, stored: str, planted: Planted
) -> None:
    fields = stored_strings(build_event(body))
    assert fields[field] == stored
    leaks = {k: planted.found_in(v) for k, v in fields.items() if planted.found_in(v)}
    assert not leaks, leaks


def test_email_as_ua_product_token_is_not_a_browser(build_event: Build) -> None:
    ua = "someone@example.com/1.0 CFNetwork/1490.0.4 Darwin/23.2.0"
    # A contact address in a UA is what crawlers write (isbot's list says so): no event at all ...
    with pytest.raises(Dropped, match="bot"):
        build_event({"u": f"https://{SITE}/"}, ua=ua)
    # ... and were it classified, the address could not become a browser name.
    info = UAParser().parse(ua)
    browsers, oses = vocabulary()
    assert info.browser == "Other" and info.browser in browsers and info.os in oses
    planted = email("someone", "example.com")
    assert not [v for v in (info.browser, info.browser_version, info.os, info.os_version) if planted.found_in(v)]


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07"], ids=["NUL", "ESC", "BEL"])
def test_control_characters_are_not_stored(build_event: Build, char: str) -> None:
    encoded = f"%{ord(char):02X}"
    body = {
        "u": f"https://{SITE}/a{encoded}b/{char}c?utm_source=x{encoded}y&utm_campaign=p{char}q",
        "r": f"https://news.example.org/r{encoded}s/{char}t",
    }
    fields = stored_strings(build_event(body))
    assert (fields["path"], fields["referrer_path"]) == ("/ab/c", "/rs/t")
    assert (fields["utm_source"], fields["utm_campaign"]) == ("xy", "pq")
    assert not [k for k, v in fields.items() if char in v]


@pytest.mark.parametrize("sent", ["Signup", "Ｓｉｇｎｕｐ", "Sign%75p", "Sig\u200bnup", " Signup\x00"])
def test_custom_event_names_are_normalised_before_the_allowlist(build_event: Build, sent: str) -> None:
    event = build_event({"n": sent, "u": f"https://{SITE}/"}, custom_events=("Signup",))
    assert event.name == "Signup"


def test_an_allowlisted_name_is_stored_scrubbed(build_event: Build) -> None:
    event = build_event(
        {"n": "Signup jane%40example.com", "u": f"https://{SITE}/"}, custom_events=("Signup jane@example.com",)
    )
    assert event.name == ":email"


def test_engagement_spelled_otherwise_is_still_engagement(build_event: Build) -> None:
    event = build_event({"n": "ｅｎｇａｇｅｍｅｎｔ", "u": f"https://{SITE}/", "e": 4200})
    assert (event.name, event.engaged_ms) == ("engagement", 4200)
