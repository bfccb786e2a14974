"""Identifiers an outside attacker obfuscated, through the real pipeline: each one reached the Event before.

Found by running attacker strings through the collector's own entry points
(page path, referrer, UTM values): other escapes than percent-encoding, "@"
written in brackets, doubled or spelled out, quoted or emoji local parts, an
address shown reversed by a bidi override, IPv4 with hex parts, a phone number
hidden in a punycode host name. The property tests (tests/privacy/planted.py)
generate every one of these classes; the cases here name them one by one.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.privacy.conftest import SITE, Build

OBFUSCATED = [
    ("jane[@]example.com", ":email"),
    ("jane(@)example.com", ":email"),
    ("jane@@example.com", ":email"),
    ("jane(a)example.com", ":email"),
    ("jane⒜example.com", ":email"),  # "(a)" after NFKC
    ("jane at example dot com", ":email"),
    ("jane AT example DOT com", ":email"),
    ("jane-at-example-dot-com", ":email"),
    ("jane_at_example.com", ":email"),
    ("jane at example (dot) co.uk", ":email"),
    ('"jane"@example.com', ":email"),
    ("jane\U0001f600@example.com", ":email"),
    ("jane@ example.com", ":email"),
    ("jane @example.com", ":email"),
    ("jane%u0040example.com", ":email"),
    ("jane\\u0040example.com", ":email"),
    ("jane\\u{40}example.com", ":email"),
    ("jane\\x40example.com", ":email"),
    ("jane&#64;example.com", ":email"),
    ("jane&#x40;example.com", ":email"),
    ("jane&#64example.com", ":email"),
    ("jane&commat;example.com", ":email"),
    ("jane&amp;#64;example.com", ":email"),
    ("jane\u202emoc.elpmaxe@", ":token"),  # displays as jane@example.com
    ("0x7f.0x0.0x0.0x1", ":ip"),
    ("0xc0.168.0x1.1", ":ip"),
    ("0xc0.0xa80101", ":ip"),
    ("192,168,1,1", ":ip"),
    ("2000-2000-2000", ":phone"),  # three groups that each look like a year are still a number
]

# Readable values the new rules must leave alone.
KEPT = [
    "look-at-this.html",
    "meet-at-the-booth",
    "follow @onecloud",
    "tips&notes",
    "R&D",
    "v1.2.3",
    "Q&A-2024",
    "2023-2024",
]


def _in_path(text: str) -> str:
    return quote(text, safe="@()[]'!$*,&=+ ")


@pytest.mark.parametrize(("value", "placeholder"), OBFUSCATED)
def test_obfuscated_identifier_in_a_path_segment(build_event: Build, value: str, placeholder: str) -> None:
    event = build_event({"u": f"https://{SITE}/users/{_in_path(value)}/settings"})
    assert event.path == f"/users/{placeholder}/settings", event.path


@pytest.mark.parametrize(("value", "placeholder"), OBFUSCATED)
def test_obfuscated_identifier_in_utm_content(build_event: Build, value: str, placeholder: str) -> None:
    event = build_event({"u": f"https://{SITE}/landing?utm_source=news&utm_content={quote(value, safe='')}"})
    assert event.utm_content == placeholder, event.utm_content
    assert event.utm_source == "news"


@pytest.mark.parametrize(("value", "placeholder"), OBFUSCATED)
def test_obfuscated_identifier_in_the_referrer_path(build_event: Build, value: str, placeholder: str) -> None:
    event = build_event({"u": f"https://{SITE}/", "r": f"https://news.example.org/u/{_in_path(value)}"})
    assert event.referrer_path == f"/u/{placeholder}", event.referrer_path


@pytest.mark.parametrize("value", KEPT)
def test_readable_values_stay(build_event: Build, value: str) -> None:
    event = build_event({"u": f"https://{SITE}/p/{_in_path(value)}?utm_campaign={quote(value, safe='')}"})
    assert event.path == f"/p/{value}"
    assert event.utm_campaign == value


@pytest.mark.parametrize(
    "host",
    [
        "٤١٥٥٥٥٠١٠٠.example.org",  # a phone number in Arabic-Indic digits
        "jane٠٠١٢٣٤٥٦٧.example.org",
        "jane-at-example-dot-com.example.org",
    ],
)
def test_identifier_in_a_punycode_referrer_host(build_event: Build, host: str) -> None:
    # Browsers send an internationalised host name as punycode (xn--...).
    sent = host.encode("idna").decode("ascii")
    assert sent.startswith("xn--") or host.isascii()
    event = build_event({"u": f"https://{SITE}/", "r": f"https://{sent}/x"})
    assert event.referrer_host is not None and event.referrer_host.startswith(":"), event.referrer_host
    assert event.referrer_source == event.referrer_host
