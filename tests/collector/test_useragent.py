from __future__ import annotations

import gc
import tracemalloc

import pytest

from collector.devices import NO_HINTS, Hints, client_hints
from collector.useragent import UAParser

UAS = {
    "chrome-win": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "Windows", "10", "desktop", False),
    ),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1",
        ("Safari", "17", "iPadOS", "17", "tablet", False),
    ),
    "safari-ipad-ios12": (
        "Mozilla/5.0 (iPad; CPU OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/12.1.2 Mobile/15E148 Safari/604.1",
        ("Safari", "12", "iOS", "12", "tablet", False),
    ),
    "safari-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        ("Safari", "17", "iOS", "17", "mobile", False),
    ),
    "chrome-android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        ("Chrome", "131", "Android", "14", "mobile", False),
    ),
    "firefox-mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0",
        ("Firefox", "132", "macOS", "10", "desktop", False),
    ),
    # A Galaxy Tab that sends "Mobile Safari" is still a tablet.
    "galaxy-tab-mobile-safari": (
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36",
        ("Chrome", "120", "Android", "13", "tablet", False),
    ),
    "fire-tablet": (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/126.2.6 "
        "like Chrome/126.0.6478.186 Safari/537.36",
        ("Silk", "126", "Fire OS", "", "tablet", False),
    ),
    "chromebook": (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131", "Chrome OS", "", "desktop", False),
    ),
    "android-laptop": (
        "Mozilla/5.0 (Linux; Android 7.1.2; HP EliteBook 820 G2) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/86.0.4240.185 Safari/537.36",
        ("Chrome", "86", "Android", "7", "desktop", False),
    ),
    "wear-os": (
        "Mozilla/5.0 (Linux; Android 11; Wear OS; SM-R900) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/99.0.4844.88 Mobile Safari/537.36",
        ("Chrome", "99", "Wear OS", "", "mobile", False),
    ),
    "office-mac": (
        "Microsoft Office Word/16.54.21101001 (Mac OS/12.0.1; Desktop; en-US; NonAppStore; Apple/MacBookPro18,1)",
        ("Unknown", "", "macOS", "12", "desktop", False),
    ),
    "dalvik-app": (
        "Dalvik/2.1.0 (Linux; U; Android 13; SM-A135F Build/TP1A.220624.014)",
        ("Android", "13", "Android", "13", "mobile", False),
    ),
    "kaios-feature-phone": (
        "Mozilla/5.0 (Mobile; Nokia_8110_4G; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5",
        ("Firefox", "48", "KaiOS", "2", "mobile", False),
    ),
}


@pytest.fixture(scope="module")
def parser() -> UAParser:
    return UAParser()


@pytest.mark.parametrize("name", sorted(UAS))
def test_browsers(parser: UAParser, name: str) -> None:
    ua, expected = UAS[name]
    info = parser.parse(ua)
    assert (info.browser, info.browser_version, info.os, info.os_version, info.device, info.bot) == expected


@pytest.mark.parametrize(
    ("ua", "kind"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "crawler"),
        ("curl/8.5.0", "client"),
        ("python-requests/2.32.3", "client"),
        ("Go-http-client/2.0", "client"),
        ("GuzzleHttp/7", "client"),
        ("kube-probe/1.29", "client"),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "crawler"),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "automation",
        ),  # fmt: skip
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; AdsBot-Google-Mobile; "
            "+http://www.google.com/mobile/adsbot.html)",
            "automation",
        ),
        (
            "Mozilla/5.0 (Linux; Android 11; Pixel 2; DuplexWeb-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/86.0.4240.193 Mobile Safari/537.36",
            "automation",
        ),  # fmt: skip
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Safari/537.36 Chrome-Lighthouse",
            "automation",
        ),  # fmt: skip
        ("123", "crawler"),
        ("default_user_agent", "crawler"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "client"),
        ("", "junk"),
    ],
)
def test_bots(parser: UAParser, ua: str, kind: str) -> None:
    info = parser.parse(ua)
    assert (info.bot, info.bot_kind) == (True, kind)


# The in-app browsers issue 17 found dropped by list patterns ("MetaIAB Facebook", an
# Android build id, "Sonic" in Slack, "Viber", "Fetch/" in Firefox's MozacFetch).
IN_APP = [
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/128.0.6613.88 Mobile Safari/537.36 MetaIAB Facebook",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/127.0.6533.103 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/477.0.0.49.79;IABMV/1;]",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.39.95 "
    "Chrome/126.0.6478.127 Electron/31.2.1 Safari/537.36 Sonic Slack_SSB/4.39.95",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Viber/22.9.0.3 "
    "Chrome/108.0.5359.215 Electron/22.3.27 Safari/537.36",
    "MozacFetch/126.0.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5_1; en_US; en; scale=3.00; 1170x2532; 620523120)",
]


@pytest.mark.parametrize("ua", IN_APP)
def test_in_app_browsers_are_visitors(parser: UAParser, ua: str) -> None:
    assert not parser.parse(ua).bot


def test_list_pattern_needs_a_crawler_word_when_a_browser_engine_is_there(parser: UAParser) -> None:
    # "Sonic" is a crawler-user-agents pattern: alone it names that crawler ...
    assert parser.parse("Sonic/1.0").bot
    # ... but beside a real engine it is Slack's token, not a crawler's.
    assert not parser.parse(IN_APP[2]).bot
    # A crawler that says so beside a browser engine is still one.
    assert parser.parse(
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
        "(compatible; Bytespider; spider-feedback@bytedance.com)"
    ).bot


@pytest.mark.parametrize(
    "ua",
    [
        # isbot's shape pattern (a bare "Name/1.0") matches these; a product that calls itself a
        # browser is one unless the matched text names a crawler.
        "K3_Dorado WAP-Browser/1.0.0",
        "dv(iPh12,1);pr(UCBrowser/12.9.0.1300);ov(16_2);ss(390x844);bt(UC);pm(1);bv(0);nm(0);im(0);nt(2);",
    ],
)
def test_a_self_named_browser_is_a_visitor(parser: UAParser, ua: str) -> None:
    assert not parser.parse(ua).bot


@pytest.mark.parametrize(
    ("ua", "hints"),
    [
        ("Lumen/2.4 (iPhone; iOS 17.1; Scale/3.00)", NO_HINTS),
        ("Lumen/240 CFNetwork/1474 Darwin/23.0.0", NO_HINTS),
        ("Lumen/2.4 Dalvik/2.1.0 (Linux; U; Android 13; SM-A546B)", NO_HINTS),
        ("Lumen/2.4", client_hints(b'"Android"', b"?1")),
    ],
)
def test_an_app_that_names_its_platform_is_a_visitor(parser: UAParser, ua: str, hints: Hints) -> None:
    # A bare "Name/1.0" is a script's shape (isbot's pattern); a platform comment, Apple's
    # networking stack, Dalvik or client hints say a device sent it (docs/collector.md).
    assert not parser.parse(ua, hints).bot
    assert parser.parse("Lumen/2.4").bot


def test_a_self_named_browser_that_names_a_crawler_is_a_bot(parser: UAParser) -> None:
    assert parser.parse("SiteScanBrowser/2.0").bot_kind == "crawler"


def test_headless_is_a_bot_unless_allowed() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
    assert UAParser().parse(ua).bot
    info = UAParser(allow_headless=True).parse(ua)
    assert not info.bot and info.browser == "Chrome"


def test_headless_brand_in_client_hints_is_automation() -> None:
    # Puppeteer with a spoofed UA still says "HeadlessChrome" in Sec-CH-UA.
    ua = UAS["chrome-win"][0]
    hints = client_hints(b'"Windows"', b"?0", b'"Chromium";v="131", "HeadlessChrome";v="131"')
    assert UAParser().parse(ua, hints).bot_kind == "automation"
    assert not UAParser(allow_headless=True).parse(ua, hints).bot


def test_client_hints_refine_the_reduced_ua(parser: UAParser) -> None:
    # Chrome's reduced UA on Android: model "K", no way to tell a tablet from the string.
    ua = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    assert parser.parse(ua, client_hints(b'"Android"', b"?1")).device == "mobile"
    assert parser.parse(ua, client_hints(b'"Android"', b"?0")).device == "tablet"
    # Chrome OS says so in the hint even where the UA says Linux.
    linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    assert parser.parse(linux, client_hints(b'"Chrome OS"', b"?0")).os == "Chrome OS"
    assert parser.parse(linux).os == "Linux"


def test_client_hints_are_a_closed_set() -> None:
    assert client_hints(b'"Windows"', b"?0") == ("Windows", "?0", False)
    # Anything outside the known values is no hint at all, so it can neither reach an
    # event nor grow the cache key space.
    assert client_hints(b'"someone@example.com"', b"?2") == NO_HINTS
    assert client_hints(None, None) == NO_HINTS
    assert not NO_HINTS.sent and client_hints(b'"Linux"', None).sent


def test_cache_is_bounded_and_keyed_by_the_hints() -> None:
    parser = UAParser(cache_size=10)
    ua = UAS["chrome-win"][0]
    for i in range(50):
        # Twice each: once the cache is full, a UA is admitted on its second sight.
        parser.parse(ua.replace("131.0.0.0", f"131.0.{i}.0"))
        parser.parse(ua.replace("131.0.0.0", f"131.0.{i}.0"))
    assert parser.cache_info().entries == 10
    hits = parser.cache_info().hits
    parser.parse(ua.replace("131.0.0.0", "131.0.49.0"))
    assert parser.cache_info().hits == hits + 1
    parser.parse(ua.replace("131.0.0.0", "131.0.0.0"))  # the least recently used went first
    assert parser.cache_info().hits == hits + 1
    # The same string with other hints is another entry: the hints change the answer.
    for _ in range(2):
        parser.parse(ua.replace("131.0.0.0", "131.0.49.0"), client_hints(b'"Windows"', b"?0"))
    assert parser.cache_info().hits == hits + 1
    parser.parse(ua.replace("131.0.0.0", "131.0.49.0"), client_hints(b'"Windows"', b"?0"))
    assert parser.cache_info().hits == hits + 2


def test_cache_key_is_the_cut_string() -> None:
    # Issue 13: the cache was keyed by the whole header, so every unique 1 MB UA stayed in memory.
    parser = UAParser()
    base = UAS["chrome-win"][0] + " x" * 400
    for i in range(20):
        info = parser.parse(base + f" {i:04d}" * 100_000)  # ~0.5 MB each, alike in the first 512 characters
        assert info.browser == "Chrome"
    stats = parser.cache_info()
    assert (stats.entries, stats.misses, stats.hits) == (1, 1, 19)
    assert stats.bytes < 2048


def test_cache_is_bounded_by_bytes() -> None:
    budget = 256 * 1024
    parser = UAParser(cache_size=1_000_000, cache_bytes=budget)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(3000):  # unique within the cut: every one is a new entry
            parser.parse(f"Mozilla/5.0 ({i}) " + "\u20ac" * 2000, client_hints(b'"Android"', b"?1"))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    stats = parser.cache_info()
    assert stats.bytes <= budget and stats.entries < 3000
    # What the process really holds, measured, stays within the budget (plus a little slack).
    assert held < budget * 1.25, f"{held} bytes held for a {budget}-byte budget"


def test_oversized_ua_is_cut_before_parsing(parser: UAParser) -> None:
    info = parser.parse(UAS["chrome-win"][0] + " x" * 50_000)
    assert info.browser == "Chrome"


def test_a_flood_of_unique_uas_does_not_evict_the_popular_ones() -> None:
    parser = UAParser(cache_size=10)
    popular = [UAS["chrome-win"][0].replace("131.0.0.0", f"131.0.{i}.0") for i in range(10)]
    for ua in popular:
        parser.parse(ua)
    for i in range(1000):  # each seen once: not admitted once the cache is full
        parser.parse(f"Mozilla/5.0 (flood {i}) Gecko/20100101 Firefox/133.0")
    before = parser.cache_info()
    for ua in popular:
        parser.parse(ua)
    after = parser.cache_info()
    assert after.hits - before.hits == 10 and after.entries == 10
    # A UA that comes back is admitted on its second sight, evicting the least recently used.
    parser.parse("Mozilla/5.0 (flood 999) Gecko/20100101 Firefox/133.0")
    parser.parse("Mozilla/5.0 (flood 999) Gecko/20100101 Firefox/133.0")
    hits = parser.cache_info().hits
    parser.parse("Mozilla/5.0 (flood 999) Gecko/20100101 Firefox/133.0")
    assert parser.cache_info().hits == hits + 1
    assert parser.cache_info().entries == 10
