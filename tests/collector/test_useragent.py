from __future__ import annotations

import gc
import time
import tracemalloc

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
    assert parser.cache_info().entries == 10
    parser.parse(ua.replace("131.0.0.0", "131.0.49.0"))
    assert parser.cache_info().hits == 1
    parser.parse(ua.replace("131.0.0.0", "131.0.0.0"))  # the least recently used went first
    assert parser.cache_info().hits == 1


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
            parser.parse(f"Mozilla/5.0 ({i}) " + "\u20ac" * 2000)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    stats = parser.cache_info()
    assert stats.bytes <= budget and stats.entries < 3000
    # What the process really holds, measured, stays within the budget (plus a little slack).
    assert held < budget * 1.25, f"{held} bytes held for a {budget}-byte budget"


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
