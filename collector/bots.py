"""Is this User-Agent a program rather than a person? One verdict per string, with a reason kind.

Signals, strongest first:

- **automation and Google's special-purpose fetchers**: headless browsers,
  webdriver, Lighthouse, WebPageTest, and the Google fetchers that look like a
  browser but are not one (AdsBot, Mediapartners, Read Aloud, Duplex, Web
  Light, AMP, DisplayAds, InspectionTool, ...). Curated here, by name.
- **HTTP clients, monitors, scanners, link previews**: libraries and tools
  whose UA starts with their own name (curl, Go-http-client, GuzzleHttp, grpc,
  kube-probe, Nuclei, ...) or that carry a tool token (synthetics, link
  preview). Curated here.
- **two maintained crawler lists**: crawler-user-agents (MIT, the Python
  package) and isbot's pattern list (Unlicense, vendored in
  ``collector/data/isbot-patterns.json``), each compiled into one RE2 set that
  says *which* patterns matched.
- **junk**: a string that is not a browser, not an app and not a known client
  ("123", "default_user_agent") — decided by the caller from the parse.

The guard against the lists' false positives: when the UA carries a real
browser engine and version (``AppleWebKit/605``, ``Gecko/20100101``,
``Chrome/126``...), a list match counts only if the text it matched names a
crawler (bot, crawler, spider, a URL...). So ``Sonic`` in Slack's app, ``Viber``,
an Android build id or ``MetaIAB Facebook`` never drop a visitor, while
``(compatible; Bytespider; ...)`` still does. A UA with no browser engine is
judged by any match.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Literal

import crawleruseragents
import re2

BotKind = Literal["automation", "crawler", "client", "junk"]
BOT_KINDS: tuple[BotKind, ...] = ("automation", "crawler", "client", "junk")


class Scanner:
    """Named patterns in a few RE2 sets: one linear pass per set says which names matched.

    A pass costs a few microseconds however many patterns a set holds (Python's
    re needs tens of microseconds for one long case-insensitive alternation, and
    each separate RE2 call costs about a microsecond of overhead). Unrelated
    lists go in separate groups: merged into one set, their automaton grows so
    large that an unseen UA costs twice as much.
    """

    def __init__(self) -> None:
        self._groups: dict[str, tuple[re2.Set, list[str]]] = {}
        self._lazy: set[str] = set()

    def add(
        self, name: str, pattern: str, ignore_case: bool = False, group: str = "tokens", lazy: bool = False
    ) -> None:
        """Add a pattern; a ``lazy`` group is left out of :meth:`scan` and asked by :meth:`matches` only."""
        if group not in self._groups:
            options = re2.Options()
            options.max_mem = 64 << 20
            self._groups[group] = (re2.Set.SearchSet(options), [])
        if lazy:
            self._lazy.add(group)
        rset, names = self._groups[group]
        if _LOOKAROUND.search(pattern):
            pattern = _strip_lookarounds(pattern)
        rset.Add(f"(?i:{pattern})" if ignore_case else pattern)
        names.append(name)

    def compile(self) -> None:
        for rset, _ in self._groups.values():
            rset.Compile()
        self._sets = tuple(v for k, v in self._groups.items() if k not in self._lazy)

    def scan(self, ua: str) -> frozenset[str]:
        text = ua.encode()  # once, not once per set as re2.Set.Match would
        found: list[str] = []
        for rset, names in self._sets:
            found += [names[i] for i in rset._set.Match(text)]
        return frozenset(found)

    def matches(self, ua: str, group: str) -> bool:
        """Whether any pattern of ``group`` matches: for a costly group only some UAs need."""
        return bool(self._groups[group][0]._set.Match(ua.encode()))

    def names(self, ua: str, groups: tuple[str, ...]) -> list[str]:
        """Which patterns of the (lazy) ``groups`` match."""
        text = ua.encode()
        found: list[str] = []
        for group in groups:
            rset, names = self._groups[group]
            found += [names[i] for i in rset._set.Match(text)]
        return found


# A real browser engine or browser product with a version number. A product whose name
# ends in "Browser" (UCBrowser/, UP.Browser/, a feature phone's WAP-Browser/) names a browser
# the way a crawler names itself "bot": a program that calls itself a browser and is not
# one still has to match a crawler word (below) to be dropped.
BROWSER_ENGINE = (
    r"(?:AppleWebKit|Gecko|Trident|Presto|Goanna|KHTML|Chrome|Firefox|Version|Opera|OPR|CriOS|FxiOS|Edg[eA]?|MSIE)"
    r"[/ ]\d|[\w.-]Browser/\d"
)

# Automation and Google's special-purpose fetchers: they send full browser UAs.
_AUTOMATION = (
    r"headlesschrome|phantomjs|slimerjs|htmlunit|lighthouse|\bwebdriver\b|selenium|puppeteer|playwright|"
    r"cypress/|\bptst/|gtmetrix|pagespeed|speedcurve|nightmarejs|electron-fetch|"
    r"\bgoogle-[a-z]|[a-z]-google\b|googleweblight|googleother|googleproducer|google favicon|displayads|"
    r"google \(\+https?://developers\.google|bingpreview|yandex\.com/bots|\bapplebot|"
    r"synthetics|rigormonitoring|dynatrace|pingdom|sitebulb|\bchatgpt|\bclaude|perplexity|\bgptbot|"
    r"link ?preview|url ?preview|linkexpanding|skypeuripreview|cardyb|iframely|embedly|vkshare|"
    r"\bfacebot\b|facebookexternalhit|\bmastodon/|burp suite|owasp zap|acunetix|nmap scripting|qualys|"
    r"censysinspect|internet-?measurement|\bexpanse\b|modatscanner|\bodin;|nikto|"
    # monitoring, testing and auditing services that drive real browsers
    r"dareboost|ghost inspector|\brigor\b|catchpoint|iplabel|statuscake|functionize|securityheaders|"
    r"cloudflareobservatory|taginspector|pageburst|datanyze|assetnote|cybaaagent|foregenix|ips-agent|"
    r"\btime/\d{13}|zombie\.js|\bwpif\b|webscreenie|websnapr|sparkler/|\bhlb/|mixnode|"
    r"google_partner_monitoring|google search console|googleadsense|googleagent|manus-user|\bdevin/|"
    r"\bnewsai/|\bdlc/|dmbrowser|\bforusp\b|webmoney advisor|productfinder|prospectorbr|daumoa|ichiro/|"
    r"firefox mutant|email%20extractor|urltester|qrafter|matomotracker|"
    # feed readers and podcast sync (a program polling a feed, not a person reading a page)
    r"subscribers|feed-?id|syndication|liferea|netnewswire|\breeder/|readkit|akregator|newsbeuter|newsboat|"
    r"fiery%20feeds|feeddemon|rssowl|quiterss|feedreader|newsfox"
)
# Programs that name themselves first: HTTP libraries, monitors, scanners, feed readers.
_CLIENT_PREFIX = (
    r"^(?:curl|wget|python|go-http-client|go |php|guzzle|grpc|undici|node|axios|restsharp|postman|insomnia|"
    r"httpie|okhttp|apache|java|jakarta|aiohttp|libwww|lwp|ruby|faraday|dart|reqwest|deno|bun/|got |scrapy|"
    r"colly|winhttp|microsoft-cryptoapi|microsoft bits|lua-resty|typhoeus|http\.rb|mechanize|ahc/|fasthttp|"
    r"vert\.x|reactornetty|embarcadero|alamofire|zend|wordpress|symfony|unirest|kube-probe|monit/|"
    r"prometheus|blackbox|datadog|elb-healthchecker|googlehc|zabbix|check_http|uptime|consul|grafana|k6/|"
    r"amazon-route53|apachebench|wrk$|nuclei|sqlmap|masscan|gobuster|fuzz faster|wpscan|clamav|l9explore|"
    r"feedly|newsblur|inoreader|tiny tiny rss|freshrss|netnewswire|feedbin|simplepie|rss|feed|"
    r"superfeedr|checkly|hetrixtools|site24x7|statuscake|newrelic|httpclient|http_request|libcurl|"
    r"winhttp|msie|powershell|nodejs|axios|snap url|bitrix|summaly|whatsapp/[\d.]+ [aiw]$|telegrambot|viber$|"
    r"linkedinbot|twitterbot|discordbot|slackbot|skypeuripreview|ruby|pycurl|urllib|httpx|requests|"
    r"mozilla/\d\.\d+ \(compatible\)$|mozilla/5\.0 \((?:windows nt|x11|macintosh)[^()]*\)$|user-agent|ureq/|"
    r"dolphin http client|"
    r"mozilla/4\.0 \(compatible; (?:win32; winhttp|grub-client))"
)
# Programs that people use, whose own tokens trip the crawler lists (checked before them):
# in-app browsers and app clients, media players, podcast and radio apps.
_HUMAN_APPS = (
    r"^MozacFetch/\d|^Dalvik/\d|\[FBAN/|\[FB_IAB/|Instagram \d|\[LinkedInApp\]|BytedanceWebview|"
    r"(?i:\bvlc\b|libvlc|^mpv |foobar2000|music player daemon|winamp|itunes|applecoremedia|podcast|podcatcher|"
    r"overcast|pocket ?casts|castbox|downcast|doubletwist|saavn|spotify|deezer|sonos|audacy|\bradio\b|garmin|"
    r"qbittorrent|transmission/|utorrent|bittorrent|wireshark|winsparkle|citrix|nook browser|newsly)"
)
# What a matched span must contain to drop a UA that has a real browser engine.
_CRAWLER_WORDS_PATTERN = (
    r"bot|crawl|spider|slurp|scrap|archiv|fetch|preview|monitor|synthetic|check|scan|probe|index|validat|seo|"
    r"https?:|www\.|\.com|\.net|\.org|\.io\b|@|\+http"
)
_CRAWLER_WORDS = re.compile(_CRAWLER_WORDS_PATTERN, re.IGNORECASE)
# The crawler lists' RE2 sets, scanned only for a UA that the tokens leave undecided.
_LIST_GROUPS = ("cua", "isbot")
# RE2 has no lookaround: such patterns match as their looser form first, then Python's re decides.
_LOOKAROUND = re.compile(r"\(\?<?[!=]")


def _strip_lookarounds(pattern: str) -> str:
    """The pattern without its lookaround groups: a looser pattern that matches at least as much."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        elif _LOOKAROUND.match(pattern, i):
            depth, i = 1, _LOOKAROUND.match(pattern, i).end()  # type: ignore[union-attr]
            while i < len(pattern) and depth:
                if pattern[i] == "\\":
                    i += 1
                else:
                    depth += {"(": 1, ")": -1}.get(pattern[i], 0)
                i += 1
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _python_lookbehinds(pattern: str) -> str:
    """isbot's JavaScript pattern as Python's re reads it.

    ``(?<!a|bc)`` becomes ``(?<!a)(?<!bc)`` (fixed-width lookbehinds only), and a
    ``-`` after a class escape inside brackets (``[\\w-.]``) is escaped.
    """
    pattern = re.sub(r"(\\[dwsDWS])-(?=[^\]]*\])", r"\1\\-", pattern)
    return re.sub(
        r"\(\?<([!=])([^()]*\|[^()]*)\)",
        lambda m: "".join(f"(?<{m.group(1)}{alt})" for alt in m.group(2).split("|")),
        pattern,
    )


@functools.cache
def _exact(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def isbot_patterns() -> list[str]:
    raw = resources.files("collector").joinpath("data", "isbot-patterns.json").read_text()
    return list(json.loads(raw)["patterns"])


class BotDetector:
    """Registers its patterns in a shared :class:`Scanner`; judges from the names one scan found."""

    def __init__(self, scanner: Scanner, allow_headless: bool = False) -> None:
        automation = _AUTOMATION
        if allow_headless:
            # The project's own browser tests run headless Chromium: let them count.
            automation = automation.replace("headlesschrome|", "")
        scanner.add("engine", BROWSER_ENGINE)
        scanner.add("automation", automation, ignore_case=True)
        scanner.add("client", _CLIENT_PREFIX, ignore_case=True)
        scanner.add("human_app", _HUMAN_APPS)
        # Anywhere in the UA, in the same pass: without one, no list match on a browser UA can
        # count, so the two lists are not scanned at all (most visitors' UAs).
        scanner.add("crawler_word", _CRAWLER_WORDS_PATTERN, ignore_case=True)
        self._scanner = scanner
        crawlers = [e["pattern"] for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
        if allow_headless:
            crawlers = [p for p in crawlers if "headless" not in p.lower()]
        # Python's re for the span a list pattern matched (and for the lookarounds RE2
        # lacks): it runs only on the few UAs the set flagged. Compiled here, once per
        # process (~0.2 s, shared by every parser), so no visitor's request pays for it.
        self._exact: dict[str, re.Pattern[str]] = {}
        for source, patterns, ignore_case in (("cua", crawlers, False), ("isbot", isbot_patterns(), True)):
            for i, p in enumerate(patterns):
                name = f"list:{source}:{i}"
                scanner.add(name, p, ignore_case, group=source, lazy=True)
                self._exact[name] = _exact(_python_lookbehinds(p), re.IGNORECASE if ignore_case else 0)

    @staticmethod
    def marked(found: frozenset[str]) -> BotKind | None:
        """The verdict the curated markers give alone (no parse needed): automation or client."""
        if "automation" in found:
            return "automation"
        if "client" in found:
            return "client"
        return None

    def kind(self, ua: str, found: frozenset[str], known_system: bool = False) -> BotKind | None:
        """The kind of program this UA names, or ``None`` if nothing says it is one.

        ``found`` is the scanner's answer for ``ua`` (its eager groups; the
        lists are scanned here, when they can change the answer);
        ``known_system`` says that the parse found an operating system or a
        handset, which protects a UA like a browser engine does. A ``None`` is
        not yet "human": the caller still applies the junk rule.
        """
        marked = self.marked(found)
        if marked is not None or "human_app" in found:
            return marked
        engine = known_system or "engine" in found
        if engine and "crawler_word" not in found:
            return None  # a list match would need a crawler word in its span
        for name in self._scanner.names(ua, _LIST_GROUPS):
            m = self._exact[name].search(ua)
            if m is not None and (not engine or _CRAWLER_WORDS.search(m.group(0))):
                return "crawler"
        return None
