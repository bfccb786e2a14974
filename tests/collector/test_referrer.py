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
