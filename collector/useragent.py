"""User-Agent (+ client hints) → browser family/major, OS family/major, device class, and bot verdict.

The UA string is parsed by ua-parser 1.x with its Rust resolver, asked for the
browser and the OS only (its device domain is the costliest third of a parse,
and a device *class* is decided better by :mod:`collector.devices`). Bots are
recognised by :mod:`collector.bots` (two maintained lists in RE2 sets, curated
automation and client markers, a guard against the lists' false positives)
plus the junk rule below. An LRU cache sits in front, so repeat UAs cost a
dictionary lookup and a flood of unique UAs costs the cheap path only; once the
cache is full a UA is admitted on its second sight only
(:mod:`collector.boundedcache`), so such a flood neither pays an insertion per
request nor evicts the popular UAs.

The cache is keyed by the UA *cut to* ``MAX_UA_CHARS`` (the parser never looks
further) and the two client hints (reduced to a closed set: they change the
answer), and bounded by bytes as well as entries: a flood of unique UAs of any
length holds at most ``max_bytes`` of keys and results, never the headers
themselves. (functools' ``lru_cache`` bounds entries only, and cachetools'
``getsizeof`` sees values but not keys, which are what varies here.)

Nothing here keeps the UA string beyond that cut key in process memory: it
is never written anywhere.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from operator import attrgetter

import ua_parser_rs
from ua_parser import load_lazy_builtins

from collector import devices
from collector.bots import BotDetector, Scanner
from collector.boundedcache import BoundedCache, CacheInfo
from collector.devices import NO_HINTS, Hints
from collector.uavocab import closed_vocabulary

# Parsing a pathological multi-kilobyte UA is wasted work: no real browser sends one.
MAX_UA_CHARS = 512
UNKNOWN = "Unknown"
#: Per cache entry beyond its key and result objects: the dict slot and the order link (measured ~70 bytes).
ENTRY_OVERHEAD = 128

_BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Amazon Silk": "Silk",
    "MiuiBrowser": "MIUI Browser",
    "HuaweiBrowser": "Huawei Browser",
    "IE Mobile": "IE",
    "Other": UNKNOWN,
}
# Browsers ua-parser reads as their engine (Chrome WebView, Safari, HbbTV), named by their own
# tokens; first match wins. Registered in the same scan as the device tokens.
_BROWSER_TOKENS: tuple[tuple[str, str], ...] = (
    ("Yandex Browser", r"YaBrowser/|YaSearchBrowser/|YaApp_Android/|YandexSearch/"),
    ("Quark", r"\bQuark/"),
    ("CM Browser", r"ACHEETAHI|CMBrowser"),
    ("Meizu Browser", r"MZBrowser"),
    ("Oppo Browser", r"OppoBrowser"),
    ("HeyTap Browser", r"HeyTapBrowser"),
    ("vivo Browser", r"VivoBrowser"),
    ("LG Browser", r"LG Browser/"),
    ("Opera Devices", r"\bOMI/"),
    ("Opera", r"\bOPR/\d"),
    ("Sogou Mobile Browser", r"SogouMobileBrowser|SogouMSE"),
    ("DuckDuckGo", r"DuckDuckGo/\d|Ddg/\d"),
    ("Sleipnir", r"Sleipnir"),
    ("Qwant", r"Qwant"),
    ("Pi Browser", r"PiBrowser/"),
    ("PICO Browser", r"PicoBrowser/"),
    ("Nintendo Browser", r"NintendoBrowser"),
)
# ua-parser families that only name an engine or a platform: a browser token may override them.
_GENERIC_BROWSERS = frozenset(
    {"Chrome", "Chrome WebView", "Safari", "HbbTV", "Android", UNKNOWN, "YandexSearch", "WebKit Nightly", "Opera"}
)
_OS_NAMES = {
    "Mac OS X": "macOS",
    "Other": UNKNOWN,
    "Chromecast": "Android",
    "Chromecast Linux": "Linux",
    "Windows Mobile": "Windows Phone",
    "Web0S": "webOS",
}
# Distributions are one family on the dashboards: "Linux".
_LINUXES = frozenset(
    (
        "Ubuntu", "Kubuntu", "Xubuntu", "Lubuntu", "Debian", "Fedora", "Red Hat", "Gentoo", "Mandriva", "Slackware",
        "SUSE", "openSUSE", "CentOS", "Mint", "Linux Mint", "Arch Linux", "Knoppix", "PCLinuxOS", "Mageia", "ROSA",
        "Sabayon", "Zenwalk", "Puppy", "Deepin", "Manjaro", "elementary OS",
    )
)  # fmt: skip


# Tokens of a browser engine or of a program people use: such a UA is never junk.
_PEOPLES = frozenset({"engine", "human_app"})


@dataclass(frozen=True, slots=True)
class UAInfo:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str  # desktop | mobile | tablet
    bot: bool
    bot_kind: str = ""  # one of collector.bots.BOT_KINDS when bot


def _entry_bytes(key: tuple[str, Hints], info: UAInfo) -> int:
    # The hints' strings are shared constants (collector.devices): only the tuples count.
    strings = (info.browser, info.browser_version, info.os, info.os_version, info.device)
    return (
        sys.getsizeof(key)
        + sys.getsizeof(key[0])
        + sys.getsizeof(key[1])
        + sys.getsizeof(info)
        + sum(map(sys.getsizeof, strings))
        + ENTRY_OVERHEAD
    )


class UAParser:
    def __init__(self, cache_size: int = 20000, allow_headless: bool = False, cache_bytes: int = 16 << 20) -> None:
        self._scanner = Scanner()
        self.bots = BotDetector(self._scanner, allow_headless)
        devices.register(self._scanner)
        for name, pattern in _BROWSER_TOKENS:
            self._scanner.add(f"browser:{name}", pattern)
        self._scanner.compile()
        self._listed_tablet = functools.partial(self._scanner.matches, group=devices.TABLET_LIST)
        # ua-parser's Rust extractors, called directly: its Parser/Resolver wrappers build
        # three result objects and test Domain flags per call (~5 µs of a ~25 µs parse),
        # and the device extractor (thousands of regexes) is never needed. No ua-parser
        # cache either: ours sits in front.
        # The lazy builtins: the same patterns as strings. The eager ones compile every pattern with
        # Python's re on import (device list included, ~0.09 CPU s per process) for nothing: the extractors
        # compile their own.
        ua_matchers, os_matchers, _ = load_lazy_builtins()
        fields = attrgetter("regex", "family", "major", "minor", "patch", "patch_minor")
        self._ua_rx = ua_parser_rs.UserAgentExtractor(map(fields, ua_matchers))
        self._os_rx = ua_parser_rs.OSExtractor(map(fields, os_matchers))
        self._allow_headless = allow_headless
        # Used from the event loop only (one thread), so no lock.
        self._cache: BoundedCache[tuple[str, Hints], UAInfo] = BoundedCache(cache_size, cache_bytes, _entry_bytes)
        # ua-parser compiles its matchers on first use (~0.25 s): pay that at
        # startup, not on a visitor's request.
        self._parse_uncached("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", NO_HINTS)

    def parse(self, ua: str, hints: Hints = NO_HINTS) -> UAInfo:
        # Cut before the lookup: the key, and what the cache keeps, never exceed MAX_UA_CHARS.
        key = (ua[:MAX_UA_CHARS], hints)
        info = self._cache.get(key)
        if info is None:
            info = self._parse_uncached(*key)
            self._cache.offer(key, info)
        return info

    def cache_info(self) -> CacheInfo:
        return self._cache.info()

    def _parse_uncached(self, ua: str, hints: Hints) -> UAInfo:
        if self._allow_headless:
            ua = ua.replace("HeadlessChrome", "Chrome")
        if not ua.strip():
            return UAInfo(UNKNOWN, "", UNKNOWN, "", "desktop", True, "junk")
        found = self._scanner.scan(ua)
        if (marked := self.bots.marked(found)) is not None:
            # Dropped whatever it names: its browser and system are never looked at, so
            # they are not parsed (a third of an unseen string's cost).
            return UAInfo(UNKNOWN, "", UNKNOWN, "", "desktop", True, marked)
        agent, os_ = self._ua_rx.extract(ua), self._os_rx.extract(ua)
        family = agent.family if agent else "Other"
        browser = _BROWSER_NAMES.get(family, family)
        if browser in _GENERIC_BROWSERS:
            browser = _browser_token(found) or _engine_of(ua, browser)
        os_family = os_.family if os_ else "Other"
        os_version = (os_.major or "") if os_ else ""
        if os_family in _LINUXES:
            os_family, os_version = "Linux", ""
        os_name, os_version = devices.os_family(ua, found, _OS_NAMES.get(os_family, os_family), os_version, hints)
        kind = self.bots.kind(ua, found, known_system=os_name != UNKNOWN or devices.is_device(found))
        if kind is None and hints.headless and not self._allow_headless:
            kind = "automation"
        if (
            kind is None
            and browser == UNKNOWN
            and os_name == UNKNOWN
            and found.isdisjoint(_PEOPLES)
            and not devices.is_device(found)
        ):
            # Neither a browser, nor a system, nor a device we know: "123", "default_user_agent".
            kind = "junk"
        info = UAInfo(
            browser=browser,
            browser_version=(agent.major or "") if agent else "",
            os=os_name,
            os_version=os_version,
            device=devices.device_class(ua, found, os_name, hints, self._listed_tablet),
            bot=kind is not None,
            bot_kind=kind or "",
        )
        # Closed vocabularies only (collector.uavocab): a UA is visitor-chosen text.
        return closed_vocabulary(info)


_BROWSER_TOKEN_NAMES = tuple(f"browser:{name}" for name, _ in _BROWSER_TOKENS)
#: Names beyond ua-parser's families that the classification can give (for collector.uavocab).
DISPLAY_BROWSERS = frozenset(_BROWSER_NAMES.values()) | {name for name, _ in _BROWSER_TOKENS}
DISPLAY_OSES = frozenset(_OS_NAMES.values()) | devices.OS_NAMES | {"Linux"}


def _browser_token(found: frozenset[str]) -> str | None:
    for token in _BROWSER_TOKEN_NAMES:
        if token in found:
            return token[8:]
    return None


def _engine_of(ua: str, family: str) -> str:
    """A TV's "HbbTV" UA names its browser further on (Chrome/, OPR/)."""
    if family != "HbbTV":
        return family
    if "OPR/" in ua or "Opera" in ua:
        return "Opera"
    return "Chrome" if "Chrome/" in ua else family
