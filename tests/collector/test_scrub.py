"""collector.scrub and collector.identifiers: normalisation first, then the identifier classes; slugs stay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.scrub import (
    MAX_DECODE_ROUNDS,
    PLACEHOLDERS,
    normalise,
    normalise_checked,
    scrub_host,
    scrub_unit,
    scrub_value,
)
from tests.privacy.needles import Planted
from tests.privacy.planted import encodings, identifiers, percent_encode


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("plain", "plain"),
        ("jane%40example.com", "jane@example.com"),
        ("jane%2540example.com", "jane@example.com"),
        ("jane%252540example.com", "jane@example.com"),
        ("%2a%2A", "**"),  # mixed-case hex
        ("caf%C3%A9", "café"),
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jane@example.com"),  # NFKC
        ("jane﹫example.com", "jane@example.com"),
        ("%EF%BC%A0", "@"),  # a full-width "@", percent-encoded
        ("％40", "@"),  # a full-width "%" starting an escape
        ("a\x00b\x1bc\x07d\ne\rf\tg", "abcdefg"),
        ("4155\u200b551\u200c234\u200d\u2060\ufeff", "4155551234"),
        ("\u202eevil\u202c\u00ad", "evil"),  # bidi controls, soft hyphen
        ("a\ufe0fb\u034fc\u3164d", "abcd"),  # variation selector, combining grapheme joiner, Hangul filler
        ("%\x0040", "@"),  # a NUL inside an escape
        ("a%0Ab", "ab"),
        ("100%", "100%"),
        ("a+b", "a+b"),  # a plus is a plus; only parse_qsl's first decoding reads it as a space
    ],
)
def test_normalise(raw: str, normal: str) -> None:
    assert normalise(raw) == normal


def test_decoding_is_bounded_and_what_is_still_encoded_is_replaced() -> None:
    within = percent_encode("jane@example.com", MAX_DECODE_ROUNDS - 1, False)
    assert normalise_checked(within) == ("jane@example.com", True)
    beyond = percent_encode("jane@example.com", MAX_DECODE_ROUNDS + 1, False)
    assert normalise_checked(beyond)[1] is False
    assert scrub_unit(beyond) == scrub_value(beyond) == scrub_host(beyond) == ":token"


def test_undecodable_bytes_make_a_token() -> None:
    # An escape split over two rounds ("%EF" then "%BC%A0") destroys the "@" but keeps both halves.
    assert scrub_unit("jane%EF%25BC%25A0example.com") == ":token"
    assert scrub_value("caf%E9") == ":token"  # Latin-1, not UTF-8


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("jane.doe@example.com", ":email"),
        ("jane@intranet", ":email"),
        ("jane＠example.com", ":email"),
        ("jane (at) example.com", ":email"),
        ("jane[at]example.com", ":email"),
        ("jane @ example.com", ":email"),
        ("mailto:jürgen@beispiel.de", ":email"),
        ("550e8400-e29b-41d4-a716-446655440000", ":uuid"),
        ("{550E8400-E29B-41D4-A716-446655440000}", ":uuid"),
        ("203.0.113.77", ":ip"),
        ("10-0-0-1", ":ip"),
        ("ip-10-0-0-1", ":ip"),
        ("010.000.000.001", ":ip"),
        ("2001:db8::8a2e:370:7334", ":ip"),
        ("[2001:DB8::1]:443", ":ip"),
        ("fe80::1%eth0", ":ip"),
        ("::ffff:192.0.2.1", ":ip"),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", ":ip"),
        ("2001-db8--1", ":ip"),
        ("00:1a:2b:3c:4d:5e", ":ip"),  # a MAC address: an identifier too
        ("+1-415-555-0100", ":phone"),
        ("+1 (415) 555-0100", ":phone"),
        ("(415) 555-0100", ":phone"),
        ("415.555.0100", ":phone"),
        ("+44 20 7946 0958", ":phone"),
        ("0049 30 1234567", ":phone"),
        ("030/1234567", ":phone"),
        ("1 415 555 0100", ":phone"),
        ("+14155550100", ":phone"),
        ("４１５５５５１２３４", ":id"),  # full-width digits
        ("٤١٥٥٥٥١٢٣٤", ":id"),  # Arabic-Indic digits
        ("4́1́5́5́5́5́1́2́3́4́", ":id"),  # combining marks between the digits
        ("order-1234567", ":id"),
        ("deadbeefcafe0123", ":token"),
        ("9F86D081884C7D659A2FEAA0C55AD015", ":token"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig", ":token"),
        ("sk_live_51HtokenABCDEF12", ":token"),
        ("Xk3_vQ9aLm2-Zt8RpW4yNc", ":token"),
        ("YUBiLmM=", ":token"),  # base64 of a@b.c
        ("YUBiYw", ":token"),  # a@bc, unpadded
        ("amFuZUBpbnRyYW5ldA", ":token"),  # jane@intranet
        ("KzE0MTU1NTUwMTAw", ":token"),  # +14155550100
        ("MTAuMC4wLjE=", ":token"),  # 10.0.0.1
        ("u=YUBiLmM", ":token"),
        ("post-YUBiLmM", ":token"),
        ("x" * 300, ":long"),
    ],
)
def test_identifier_classes(value: str, placeholder: str) -> None:
    assert scrub_unit(value) == placeholder


@pytest.mark.parametrize(
    "slug",
    [
        "pricing",
        "2024",
        "12345",  # five digits: /p/12345
        "my-post-title",
        "2024-05-12",
        "2024-05-12-launch-day",
        "12.05.2024",
        "2023-2024-season",
        "getting-started-with-onecloud-analytics",
        "iphone-15-pro-max-review",
        "h264-vs-h265-encoding-guide",
        "x86_64-linux-gnu",
        "python-3-12-release-notes",
        "top-10-tips-for-2025",
        "v1.2.3",
        "AboutUs",
        "InternationalBusinessMachines",
        "Q4FY24Launch",
        "café-menü",
        "@onecloud",  # a handle with nothing before the "@" is a profile page, not an address
        "std::vector",
        "10:30",
        "EVENTNAME",
        "CheckBox",
        "Signup",
        "File Download",
        "Outbound Link: Click",
        "404",
    ],
)
def test_readable_values_stay(slug: str) -> None:
    assert scrub_unit(slug) == slug


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("news.example.org", "news.example.org"),
        ("WWW.Example.ORG.", "www.example.org"),
        ("203.0.113.77", ":ip"),
        ("2001:db8::1", ":ip"),
        ("[2001:db8::1]", ":ip"),
        ("fe80::1%25eth0", ":ip"),
        ("3405803853", ":ip"),  # 203.0.113.77 as one number, as browsers read it
        ("0xcb00714d", ":ip"),
        ("0313.0.0161.0115", ":ip"),  # octal
        ("2001-db8--1.ipv6-literal.net", ":ip"),
        ("ec2-203-0-113-77.compute-1.amazonaws.com", ":ip"),
        ("２０３．０．１１３．７７", ":ip"),
        ("203。0。113。77", ":ip"),  # ideographic full stops: dots to a URL parser
        ("jane%40example.com", ":email"),
        ("deadbeefcafe0123.ngrok.example", ":token"),
    ],
)
def test_hosts(host: str, stored: str) -> None:
    assert scrub_host(host) == stored


@settings(max_examples=300, deadline=None, derandomize=True)
@given(planted=identifiers, data=st.data())
def test_every_class_under_every_encoding_becomes_a_placeholder(planted: Planted, data: st.DataObject) -> None:
    value = data.draw(encodings(planted.text))
    assert scrub_value(value) in PLACEHOLDERS
    assert scrub_unit(value) in PLACEHOLDERS


@pytest.mark.parametrize(
    "hostile",
    ["1-" * 1000, "a:" * 1000, "@" * 2000, "%25" * 600, "+(" * 1000, "Ab1-" * 500, "::" * 1000, "eyJ" * 600],
)
def test_patterns_do_not_backtrack_on_hostile_input(hostile: str) -> None:
    # Linear patterns finish at once; a backtracking one would run into the test timeout.
    assert len(scrub_value(hostile)) <= 200 and len(scrub_unit(hostile)) <= 200
