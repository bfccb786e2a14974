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

import json
import re
from importlib import resources
from typing import Literal

import crawleruseragents
import re2

BotKind = Literal["automation", "crawler", "client", "junk"]
BOT_KINDS: tuple[BotKind, ...] = ("automation", "crawler", "client", "junk")

# A real browser engine or browser product with a version number.
BROWSER_ENGINE = re.compile(
    r"(?:AppleWebKit|Gecko|Trident|Presto|Goanna|KHTML|Chrome|Firefox|Version|Opera|OPR|CriOS|FxiOS|Edg[eA]?|MSIE)"
    r"[/ ]\d"
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
    r"censysinspect|internet-?measurement|\bexpanse\b|modatscanner|\bodin;|nikto"
)
# Programs that name themselves first: HTTP libraries, monitors, scanners, feed readers.
_CLIENT_PREFIX = (
    r"^(?:curl|wget|python|go-http-client|go |php|guzzle|grpc|undici|node|axios|restsharp|postman|insomnia|"
    r"httpie|okhttp|apache|java|jakarta|aiohttp|libwww|lwp|ruby|faraday|dart|reqwest|deno|bun/|got |scrapy|"
    r"colly|winhttp|microsoft-cryptoapi|microsoft bits|lua-resty|typhoeus|http\.rb|mechanize|ahc/|fasthttp|"
    r"vert\.x|reactornetty|embarcadero|alamofire|cfnetwork|zend|wordpress|symfony|unirest|kube-probe|monit/|"
    r"prometheus|blackbox|datadog|elb-healthchecker|googlehc|zabbix|check_http|uptime|consul|grafana|k6/|"
    r"amazon-route53|apachebench|wrk$|nuclei|sqlmap|masscan|gobuster|fuzz faster|wpscan|clamav|l9explore|"
    r"feedly|newsblur|inoreader|tiny tiny rss|freshrss|netnewswire|feedbin|simplepie|rss|feed|"
    r"superfeedr|checkly|hetrixtools|site24x7|statuscake|newrelic|httpclient|http_request|libcurl|"
    r"winhttp|msie|powershell|nodejs|axios|snap url|bitrix|summaly|whatsapp/|telegrambot|viber$|"
    r"linkedinbot|twitterbot|discordbot|slackbot|skypeuripreview|ruby|pycurl|urllib|httpx|requests|"
    r"mozilla/\d\.\d+ \(compatible\)$|user-agent)"
)
# Apps that people use, whose own tokens trip the crawler lists (checked before them).
_HUMAN_APPS = re.compile(r"^MozacFetch/\d|^Dalvik/\d|\[FBAN/|\[FB_IAB/|Instagram \d|\[LinkedInApp\]|BytedanceWebview")
# What a matched span must contain to drop a UA that has a real browser engine.
_CRAWLER_WORDS = re.compile(
    r"bot|crawl|spider|slurp|scrap|archiv|fetch|preview|monitor|synthetic|check|scan|probe|index|validat|seo|"
    r"https?:|www\.|\.com|\.net|\.org|\.io\b|@|\+http",
    re.IGNORECASE,
)
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


def isbot_patterns() -> list[str]:
    raw = resources.files("collector").joinpath("data", "isbot-patterns.json").read_text()
    return list(json.loads(raw)["patterns"])


class _PatternSet:
    """Many patterns in one RE2 set; answers which matched, and what text each matched."""

    def __init__(self, patterns: list[str], case_sensitive: bool) -> None:
        options = re2.Options()
        options.max_mem = 64 << 20
        options.case_sensitive = case_sensitive
        self._set = re2.Set.SearchSet(options)
        self._exact: list[re.Pattern[str]] = []
        for p in patterns:
            self._set.Add(_strip_lookarounds(p) if _LOOKAROUND.search(p) else p)
            # Python's re for the span (and for the lookarounds RE2 lacks): run only on a hit.
            self._exact.append(re.compile(_python_lookbehinds(p), 0 if case_sensitive else re.IGNORECASE))
        self._set.Compile()

    def spans(self, ua: str) -> list[str]:
        found = []
        for i in self._set.Match(ua) or ():
            m = self._exact[i].search(ua)
            if m is not None:
                found.append(m.group(0))
        return found


class BotDetector:
    def __init__(self, allow_headless: bool = False) -> None:
        automation = _AUTOMATION
        if allow_headless:
            # The project's own browser tests run headless Chromium: let them count.
            automation = automation.replace("headlesschrome|", "")
        self._automation = re.compile(automation, re.IGNORECASE)
        self._client = re.compile(_CLIENT_PREFIX, re.IGNORECASE)
        crawlers = [e["pattern"] for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
        if allow_headless:
            crawlers = [p for p in crawlers if "headless" not in p.lower()]
        self._lists = (_PatternSet(crawlers, True), _PatternSet(isbot_patterns(), False))

    def kind(self, ua: str) -> BotKind | None:
        """The kind of program this UA names, or ``None`` if nothing says it is one.

        A ``None`` is not yet "human": the caller still applies the junk rule.
        """
        if self._automation.search(ua):
            return "automation"
        if self._client.search(ua):
            return "client"
        if _HUMAN_APPS.search(ua):
            return None
        engine = BROWSER_ENGINE.search(ua) is not None
        for patterns in self._lists:
            for span in patterns.spans(ua):
                if not engine or _CRAWLER_WORDS.search(span):
                    return "crawler"
        return None
