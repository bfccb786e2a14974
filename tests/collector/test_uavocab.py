"""The closed vocabularies of the UA-derived fields (collector.uavocab), through the real parser."""

from __future__ import annotations

import re

import pytest
from ua_parser.lazy import OSMatcher, UserAgentMatcher

from collector import useragent
from collector.uavocab import BROWSER_FAMILIES, OS_FAMILIES, OTHER, families, version, vocabulary
from collector.useragent import UAParser


@pytest.fixture(scope="module")
def parser() -> UAParser:
    return UAParser()


def test_families_are_read_from_the_parser_data() -> None:
    # Literal replacements, finite capture groups, and nothing open-ended.
    assert {"Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet", "Mobile Safari"} <= BROWSER_FAMILIES
    assert {
        "Chrome Mobile",
        "Chrome Mobile iOS",
        "Firefox iOS",
        "Yandex Browser",
        "UC Browser",
        "Vivaldi",
    } <= BROWSER_FAMILIES
    assert {"Windows", "Mac OS X", "iOS", "Android", "Linux", "Ubuntu", "Chrome OS"} <= OS_FAMILIES
    assert len(BROWSER_FAMILIES) > 300 and len(OS_FAMILIES) > 50
    assert not [f for f in BROWSER_FAMILIES | OS_FAMILIES if re.search(r"\$\d|@", f)]  # no unfilled template


def test_families_of_synthetic_matchers() -> None:
    matchers = [
        UserAgentMatcher(r"(Firefox|Iceweasel)/(\d+)"),
        UserAgentMatcher(r"Acme/(\d+)", "Acme Browser"),
        UserAgentMatcher(r"(Pale[Mm]oon)/(\d+)", "$1 Browser"),
        UserAgentMatcher(r"^(.{0,200})/(\d+) CFNetwork"),  # open-ended: names nothing
        UserAgentMatcher(r"([A-Za-z]+)Bot/(\d+)"),
    ]
    assert families(matchers) == {"Firefox", "Iceweasel", "Acme Browser", "PaleMoon Browser", "Palemoon Browser"}
    assert families([OSMatcher(r"(Windows) NT (\d+)")]) == {"Windows"}


def test_display_names_are_in_the_vocabulary() -> None:
    browsers, oses = vocabulary()
    assert set(useragent._BROWSER_NAMES.values()) <= browsers and set(useragent._OS_NAMES.values()) <= oses
    # and every name the token rules give (Yandex Browser, Fire OS, iPadOS, Meta Horizon...)
    assert useragent.DISPLAY_BROWSERS <= browsers and useragent.DISPLAY_OSES <= oses
    assert {useragent.UNKNOWN, OTHER} <= browsers & oses


@pytest.mark.parametrize(
    "ua",
    [
        "someone@example.com/1.0 CFNetwork/1490.0.4 Darwin/23.2.0",
        "jane.doe%40example.com/2 CFNetwork/1490.0.4 Darwin/23.2.0",
        "+14155550100/1.0 CFNetwork/1490.0.4 Darwin/23.2.0",
        "550e8400-e29b-41d4-a716-446655440000-iPhone/3 CFNetwork/1490.0.4 Darwin/23.2.0",
    ],
)
def test_visitor_text_in_the_ua_is_not_a_family(parser: UAParser, ua: str) -> None:
    info = parser.parse(ua)
    assert info.browser == OTHER
    browsers, oses = vocabulary()
    assert info.os in oses and info.device in ("desktop", "mobile", "tablet")


def test_versions_are_short_digit_runs(parser: UAParser) -> None:
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36"
    assert parser.parse(chrome.format(v="131.0.0.0")).browser_version == "131"
    assert parser.parse(chrome.format(v="4155551234.0.0.0")).browser_version == ""
    assert (version("17"), version("2024"), version("12345"), version("１７"), version("17b")) == (
        "17",
        "2024",
        "",
        "",
        "",
    )


def test_real_browsers_keep_their_names(parser: UAParser) -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
    )
    info = parser.parse(ua)
    assert (info.browser, info.browser_version, info.os, info.os_version, info.device) == (
        "Samsung Internet",
        "26",
        "Android",
        "14",
        "mobile",
    )
