"""User-Agent → browser family/major, OS family/major, device class, and bot verdict.

The UA string is parsed by ua-parser 1.x with its Rust resolver (about 30 µs for
an unseen string, against about 1 ms for user-agents' default pure-Python
path); user-agents then classifies the device from that parse. Bots are
recognised by ua-parser's "Spider" family plus the maintained
crawler-user-agents pattern list, compiled once into a single RE2 automaton
(about 5 µs per string, where Python's ``re`` needs about 200 µs). An LRU cache
sits in front, so repeat UAs cost a dictionary lookup and a flood of unique UAs
costs the cheap path, never the slow one.

The cache is keyed by the UA *cut to* ``MAX_UA_CHARS`` (the parser never looks
further), and bounded by bytes as well as entries: a flood of unique UAs of any
length holds at most ``max_bytes`` of keys and results, never the headers
themselves. (functools' ``lru_cache`` bounds entries only, and cachetools'
``getsizeof`` sees values but not keys, which are what varies here.)

Nothing here keeps the UA string beyond that cut key in process memory: it
is never written anywhere.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass

import crawleruseragents
import re2
from ua_parser import Domain, Parser, load_builtins
from ua_parser.regex import Resolver as RustResolver
from user_agents.parsers import Browser, Device, OperatingSystem, UserAgent

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
    "Other": UNKNOWN,
}
_OS_NAMES = {"Mac OS X": "macOS", "Other": UNKNOWN}


@dataclass(frozen=True, slots=True)
class UAInfo:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str  # desktop | mobile | tablet
    bot: bool


def _crawler_automaton() -> re2._Regexp:
    options = re2.Options()
    options.max_mem = 128 << 20
    patterns = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    return re2.compile("|".join(f"(?:{p})" for p in patterns), options)


def _entry_bytes(key: str, info: UAInfo) -> int:
    strings = (info.browser, info.browser_version, info.os, info.os_version, info.device)
    return sys.getsizeof(key) + sys.getsizeof(info) + sum(map(sys.getsizeof, strings)) + ENTRY_OVERHEAD


@dataclass(slots=True)
class CacheInfo:
    entries: int
    bytes: int
    hits: int
    misses: int


class UAParser:
    def __init__(self, cache_size: int = 20000, allow_headless: bool = False, cache_bytes: int = 16 << 20) -> None:
        self._crawlers = _crawler_automaton()
        # The Rust resolver without ua-parser's own cache: ours sits in front already.
        self._parser = Parser(RustResolver(load_builtins()))
        self._allow_headless = allow_headless
        # Used from the event loop only (one thread), so no lock.
        self._cache: OrderedDict[str, tuple[UAInfo, int]] = OrderedDict()
        self._max_entries = cache_size
        self._max_bytes = cache_bytes
        self._bytes = self._hits = self._misses = 0
        # ua-parser compiles its matchers on first use (~0.25 s): pay that at
        # startup, not on a visitor's request.
        self._parse_uncached("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")

    def parse(self, ua: str) -> UAInfo:
        # Cut before the lookup: the key, and what the cache keeps, never exceed MAX_UA_CHARS.
        key = ua[:MAX_UA_CHARS]
        cache = self._cache
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            self._hits += 1
            return hit[0]
        self._misses += 1
        info = self._parse_uncached(key)
        size = _entry_bytes(key, info)
        if size > self._max_bytes or self._max_entries <= 0:
            return info
        cache[key] = (info, size)
        self._bytes += size
        while self._bytes > self._max_bytes or len(cache) > self._max_entries:
            _, (_, old) = cache.popitem(last=False)
            self._bytes -= old
        return info

    def cache_info(self) -> CacheInfo:
        return CacheInfo(len(self._cache), self._bytes, self._hits, self._misses)

    def _parse_uncached(self, ua: str) -> UAInfo:
        ua = ua[:MAX_UA_CHARS]
        if self._allow_headless:
            # The project's own browser tests run headless Chromium: let them count.
            ua = ua.replace("HeadlessChrome", "Chrome")
        if not ua.strip():
            return UAInfo(UNKNOWN, "", UNKNOWN, "", "desktop", True)
        result = self._parser(ua, Domain.ALL)
        agent, os_, dev = result.user_agent, result.os, result.device
        ua_obj = _ParsedUserAgent(ua, agent, os_, dev)
        bot = ua_obj.is_bot or bool(self._crawlers.search(ua))
        if ua_obj.is_tablet:
            device = "tablet"
        elif ua_obj.is_mobile:
            device = "mobile"
        else:
            device = "desktop"
        family = agent.family if agent else "Other"
        os_family = os_.family if os_ else "Other"
        info = UAInfo(
            browser=_BROWSER_NAMES.get(family, family),
            browser_version=(agent.major or "") if agent else "",
            os=_OS_NAMES.get(os_family, os_family),
            os_version=(os_.major or "") if os_ else "",
            device=device,
            bot=bot,
        )
        # Closed vocabularies only (collector.uavocab): a UA is visitor-chosen text.
        return closed_vocabulary(info)


class _ParsedUserAgent(UserAgent):  # type: ignore[misc]
    """user-agents' classifier fed with ua-parser's fast result instead of its slow parse.

    The classifier reads only families and version strings, so they are built
    directly (user-agents' own helpers convert every version part, which cost
    more than the classification itself on a flood of unseen UAs).
    """

    def __init__(self, ua: str, agent: object, os_: object, dev: object) -> None:
        self.ua_string = ua
        self.browser = Browser(*_family_version(agent))
        self.os = OperatingSystem(*_family_version(os_))
        if dev is None:
            self.device = Device("Other", None, None)
        else:
            self.device = Device(dev.family, dev.brand, dev.model)  # type: ignore[attr-defined]


def _family_version(obj: object) -> tuple[str, tuple[int | str, ...], str]:
    """(family, version tuple, version string) exactly as user-agents builds them."""
    if obj is None:
        return ("Other", (), "")
    parts = tuple(
        int(p) if p.isdigit() else p
        for p in (obj.major, obj.minor, obj.patch)  # type: ignore[attr-defined]
        if p is not None
    )
    return (obj.family, parts, ".".join(str(p) for p in parts))  # type: ignore[attr-defined]
