from __future__ import annotations

import pytest

from collector.paths import NO_UTM, Utm
from collector.referrer import DIRECT, channel_of, parse_referrer, source_of

SITE = "www.onecloud.example"


@pytest.mark.parametrize(
    ("referrer", "source", "host", "channel"),
    [
        ("https://www.google.com/search?q=x", "Google", "google.com", "Organic Search"),
        ("https://www.google.co.uk/", "Google", "google.co.uk", "Organic Search"),
        ("https://duckduckgo.com/", "DuckDuckGo", "duckduckgo.com", "Organic Search"),
        ("https://www.linkedin.com/feed/", "LinkedIn", "linkedin.com", "Organic Social"),
        ("https://t.co/abc", "Twitter", "t.co", "Organic Social"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News", "news.ycombinator.com", "Organic Social"),
        ("https://blog.partner.example/post/1", "blog.partner.example", "blog.partner.example", "Referral"),
        ("https://www.youtube.com/watch?v=x", "YouTube", "youtube.com", "Organic Video"),
    ],
)
def test_known_and_unknown_sources(referrer: str, source: str, host: str, channel: str) -> None:
    ref = parse_referrer(referrer, SITE)
    assert ref.source == source
    assert ref.host == host
    assert channel_of(ref, NO_UTM) == channel


def test_referrer_path_is_scrubbed_and_query_dropped() -> None:
    ref = parse_referrer("https://mail.partner.example/u/jane@example.com/inbox?token=abc#x", SITE)
    assert ref.path == "/u/:email/inbox"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.onecloud.example/pricing",
        "https://onecloud.example/",
        "https://docs.onecloud.example/a",
        "",
        None,
        "javascript:alert(1)",
        "not a url",
        "http://[::1",
        "https://",
        "https:///path",
    ],
)
def test_internal_or_invalid_referrers_are_not_kept(referrer: str | None) -> None:
    ref = parse_referrer(referrer, SITE)
    assert ref.source is None and ref.host is None and ref.path is None
    assert source_of(ref, NO_UTM) == DIRECT
    assert channel_of(ref, NO_UTM) == "Direct"


def test_utm_wins_over_referrer() -> None:
    ref = parse_referrer("https://www.google.com/", SITE)
    utm = Utm(source="newsletter", medium="email")
    assert source_of(ref, utm) == "newsletter"
    assert channel_of(ref, utm) == "Email"
    assert channel_of(ref, Utm(source="google", medium="cpc")) == "Paid Search"


@pytest.mark.parametrize(
    "referrer",
    [
        "http://203.0.113.77/admin",
        "http://[2001:db8::1]:8080/",
        "http://[fe80::1%25eth0]/",
        "http://3405803853/",
        "http://0xcb00714d/",
        "http://%32%30%33.0.113.77/",
        "http://２０３．０．１１３．７７/",
        "http://ec2-203-0-113-77.compute-1.amazonaws.com/",
    ],
)
def test_ip_literal_hosts_are_stored_as_ip(referrer: str) -> None:
    ref = parse_referrer(referrer, SITE)
    assert (ref.source, ref.host) == (":ip", ":ip")
    assert channel_of(ref, NO_UTM) == "Referral"


def test_host_holding_an_identifier_is_its_placeholder() -> None:
    assert parse_referrer("https://jane%40example.com/", SITE).host == ":email"


def test_internal_check_sees_the_normalised_host() -> None:
    assert parse_referrer("https://ｗｗｗ．ｏｎｅｃｌｏｕｄ．ｅｘａｍｐｌｅ/x", SITE).host is None


def test_referrer_path_is_normalised_then_scrubbed() -> None:
    ref = parse_referrer("https://news.example.org/u/jane.doe%2540example.com/%0Aorders/4155551234%0A", SITE)
    assert ref.path == "/u/:email/orders/:id"
