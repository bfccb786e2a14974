"""Referrer → source name, host, scrubbed path, and channel.

Only external referrers are kept: a referrer on the site itself (or one of its
subdomains) is navigation, not a source, and keeping it would only store more.
The host goes through :func:`collector.scrub.scrub_host` (an IP literal in any
spelling is stored as ``:ip``) and the path through the page-path scrubber.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from collector.paths import Utm, scrub_path
from collector.scrub import PLACEHOLDERS, scrub_host

DIRECT = "Direct / None"

# host suffix → (source name, kind). Kinds decide the channel.
_KNOWN: dict[str, tuple[str, str]] = {
    "google.com": ("Google", "search"),
    "bing.com": ("Bing", "search"),
    "duckduckgo.com": ("DuckDuckGo", "search"),
    "yahoo.com": ("Yahoo!", "search"),
    "yandex.ru": ("Yandex", "search"),
    "yandex.com": ("Yandex", "search"),
    "baidu.com": ("Baidu", "search"),
    "ecosia.org": ("Ecosia", "search"),
    "qwant.com": ("Qwant", "search"),
    "search.brave.com": ("Brave", "search"),
    "startpage.com": ("Startpage", "search"),
    "naver.com": ("Naver", "search"),
    "kagi.com": ("Kagi", "search"),
    "perplexity.ai": ("Perplexity", "ai"),
    "chatgpt.com": ("ChatGPT", "ai"),
    "chat.openai.com": ("ChatGPT", "ai"),
    "linkedin.com": ("LinkedIn", "social"),
    "lnkd.in": ("LinkedIn", "social"),
    "facebook.com": ("Facebook", "social"),
    "fb.com": ("Facebook", "social"),
    "instagram.com": ("Instagram", "social"),
    "twitter.com": ("Twitter", "social"),
    "t.co": ("Twitter", "social"),
    "x.com": ("Twitter", "social"),
    "reddit.com": ("Reddit", "social"),
    "news.ycombinator.com": ("Hacker News", "social"),
    "youtube.com": ("YouTube", "video"),
    "youtu.be": ("YouTube", "video"),
    "vimeo.com": ("Vimeo", "video"),
    "tiktok.com": ("TikTok", "social"),
    "pinterest.com": ("Pinterest", "social"),
    "mastodon.social": ("Mastodon", "social"),
    "bsky.app": ("Bluesky", "social"),
    "xing.com": ("Xing", "social"),
    "github.com": ("GitHub", "referral"),
    "stackoverflow.com": ("Stack Overflow", "referral"),
    "wikipedia.org": ("Wikipedia", "referral"),
    "mail.google.com": ("Gmail", "email"),
    "outlook.live.com": ("Outlook.com", "email"),
    "mail.yahoo.com": ("Yahoo! Mail", "email"),
}
_KIND_BY_SOURCE = {name.lower(): kind for name, kind in _KNOWN.values()}

_PAID_MEDIUMS = {"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "display", "banner"}
_EMAIL_MEDIUMS = {"email", "e-mail", "e_mail", "newsletter"}
_SOCIAL_MEDIUMS = {"social", "social-network", "social-media", "sm", "social network", "social media"}
_SEARCH_SOURCES = {"google", "bing", "duckduckgo", "yahoo", "yandex", "baidu", "ecosia", "qwant"}


@dataclass(frozen=True, slots=True)
class Referrer:
    source: str | None
    host: str | None
    path: str | None


NO_REFERRER = Referrer(None, None, None)


def _known(host: str) -> tuple[str, str] | None:
    parts = host.split(".")
    # Try "mail.google.com", then "google.com"; country variants like google.co.uk
    # are matched by their second-level label below.
    for i in range(len(parts) - 1):
        hit = _KNOWN.get(".".join(parts[i:]))
        if hit:
            return hit
    for label in parts[:-1]:
        hit = _KNOWN.get(label + ".com")
        if hit and hit[1] == "search":
            return hit
    return None


def is_internal(host: str, site: str) -> bool:
    host = host.removeprefix("www.")
    site = site.removeprefix("www.")
    return host == site or host.endswith("." + site)


def parse_referrer(referrer: str | None, site: str) -> Referrer:
    if not referrer:
        return NO_REFERRER
    try:
        parts = urlsplit(referrer.strip())
    except ValueError:
        return NO_REFERRER
    if parts.scheme not in ("http", "https", "android-app"):
        return NO_REFERRER
    host = scrub_host(parts.hostname or "")
    if not host or is_internal(host, site):
        return NO_REFERRER
    host = host.removeprefix("www.")
    known = _known(host) if host not in PLACEHOLDERS else None
    source = known[0] if known else host
    return Referrer(source=source, host=host, path=scrub_path(parts.path or "/"))


def source_of(ref: Referrer, utm: Utm) -> str:
    if utm.source:
        return utm.source
    return ref.source or DIRECT


def channel_of(ref: Referrer, utm: Utm) -> str:
    medium = (utm.medium or "").lower()
    source = (utm.source or ref.source or "").lower()
    kind = _KIND_BY_SOURCE.get(source) or ("search" if source in _SEARCH_SOURCES else None)
    if medium in _PAID_MEDIUMS or medium.startswith("paid"):
        return "Paid Search" if kind == "search" else "Paid Social" if kind == "social" else "Paid Other"
    if medium in _EMAIL_MEDIUMS or kind == "email":
        return "Email"
    if medium in _SOCIAL_MEDIUMS or kind == "social":
        return "Organic Social"
    if medium == "video" or kind == "video":
        return "Organic Video"
    if medium == "affiliate":
        return "Affiliates"
    if medium in ("organic",) or kind == "search":
        return "Organic Search"
    if kind == "ai":
        return "AI Assistants"
    if not source:
        return "Direct"
    return "Referral"
