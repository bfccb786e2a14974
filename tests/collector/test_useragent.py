from __future__ import annotations

import time

import pytest

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
        ("Safari", "17", "iOS", "17", "tablet", False),
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
}


@pytest.mark.parametrize("name", sorted(UAS))
def test_browsers(name: str) -> None:
    ua, expected = UAS[name]
    info = UAParser().parse(ua)
    assert (info.browser, info.browser_version, info.os, info.os_version, info.device, info.bot) == expected


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        "",
    ],
)
def test_bots(ua: str) -> None:
    assert UAParser().parse(ua).bot


def test_headless_is_a_bot_unless_allowed() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
    assert UAParser().parse(ua).bot
    info = UAParser(allow_headless=True).parse(ua)
    assert not info.bot and info.browser == "Chrome"


def test_cache_is_bounded_and_hits() -> None:
    parser = UAParser(cache_size=10)
    ua = UAS["chrome-win"][0]
    for i in range(50):
        parser.parse(ua.replace("131.0.0.0", f"131.0.{i}.0"))
    info = parser.parse.cache_info()  # type: ignore[attr-defined]
    assert info.currsize == 10
    parser.parse(ua.replace("131.0.0.0", "131.0.49.0"))
    assert parser.parse.cache_info().hits == 1  # type: ignore[attr-defined]


def test_unique_ua_flood_stays_cheap() -> None:
    # The point of the Rust resolver + RE2: an unseen UA must not cost ~1 ms.
    parser = UAParser()
    base = UAS["chrome-win"][0]
    start = time.perf_counter()
    n = 500
    for i in range(n):
        parser.parse(base.replace("131.0.0.0", f"131.{i}.{i * 7}.1"))
    per_ua = (time.perf_counter() - start) / n
    assert per_ua < 400e-6, f"{per_ua * 1e6:.0f} µs per unseen UA"


def test_oversized_ua_is_cut_before_parsing() -> None:
    info = UAParser().parse(UAS["chrome-win"][0] + " x" * 50_000)
    assert info.browser == "Chrome"
