"""Gate and de-identify: a :class:`Hit` (the raw request view) in, an :class:`Event` out.

The ``Hit`` carries the IP address and the UA string; it exists only inside the
request handler and is never stored, logged or passed to the spool. Everything
that leaves this module is an ``Event``, which has no field for either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from collector.devices import NO_HINTS, Hints
from collector.isp import UNKNOWN_ISP, IspDatabase, IspInfo, hosting_asns
from collector.paths import NO_UTM, Utm, extract_utm, scrub_path
from collector.payload import Payload
from collector.referrer import Referrer, channel_of, parse_referrer, source_of
from collector.salts import DayKeys
from collector.schema import MAX_TEXT, Event
from collector.scrub import normalise, scrub_value
from collector.settings import Settings
from collector.useragent import UAInfo, UAParser

BUILTIN_EVENTS = frozenset({"pageview", "engagement"})
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1", ""})


@dataclass(frozen=True, slots=True)
class Hit:
    """The raw request view. Never leaves the request handler."""

    payload: Payload
    ip: str | None
    ua: str
    ts: int
    network_domain: str | None = None
    hints: Hints = NO_HINTS  # Sec-CH-UA-Platform / -Mobile, reduced to a closed set


class Dropped(Exception):
    """A deliberate, counted drop: answered 202 with ``X-Drop-Reason``; ``kind`` says why a bot is one."""

    def __init__(self, reason: str, kind: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


# Browsers that send client hints on every HTTPS request since version 89-90: one that claims
# to be such a browser and sends none is a script wearing its UA.
_HINTING_BROWSERS = frozenset({"Chrome", "Edge", "Opera"})


class Pipeline:
    def __init__(self, settings: Settings, ua: UAParser, isp: IspDatabase | None, keys: DayKeys) -> None:
        self.settings = settings
        self.ua = ua
        self.isp = isp
        self.keys = keys
        # Allowlisted custom event names, normalised like the names that arrive (so
        # "ｓｉｇｎｕｐ" and "sign%75p" are "signup"), each mapped to what is stored:
        # the name scrubbed like any visitor string.
        self.custom_events = {normalise(n).strip(): scrub_value(n) for n in settings.custom_events}
        self.hosting = hosting_asns() if settings.datacenter_traffic != "keep" else frozenset()
        # Normalised allowlist: "www.x" and "x" name the same site.
        self.sites = {s.strip().lower().removeprefix("www."): s.strip().lower() for s in settings.sites}
        # The domain as the beacon sends it, mostly exactly a listed one: one lookup, no splitting.
        self._exact_sites = {k: v for bare, v in self.sites.items() for k in (bare, "www." + bare)}
        # Pages and referrers repeat far more than they vary: cache their parse per
        # worker (memory only, bounded; like the UA cache, never written anywhere).
        self._page = lru_cache(maxsize=20000)(self._page_uncached)
        self._referrer = lru_cache(maxsize=20000)(parse_referrer)

    def _page_uncached(self, url: str, hash_mode: bool) -> tuple[str, str, Utm] | None:
        """(host, scrubbed path, UTM values) of a page URL; ``None`` if it cannot be parsed."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return None
        path = parts.path
        if hash_mode and parts.fragment.startswith("/"):
            # Hash-routed single-page apps keep their route in the fragment; the
            # route is the page. Only its path part is kept, scrubbed like any path.
            path = parts.fragment.split("?", 1)[0]
        utm = extract_utm(parts.query) if parts.query else NO_UTM
        return (f"{parts.scheme}:{host}", scrub_path(path), utm)

    def site_for(self, domain: str) -> str | None:
        site = self._exact_sites.get(domain)
        if site is not None:
            return site
        # Plausible allows "a.com,b.com" (roll-up): the first allowed domain wins.
        for candidate in domain.split(","):
            site = self.sites.get(candidate.strip().removeprefix("www."))
            if site is not None:
                return site
        return None

    def classify_ua(self, ua: str, hints: Hints = NO_HINTS) -> UAInfo:
        return self.ua.parse(ua, hints)

    def _from_datacenter(self, info: UAInfo, hints: Hints, isp: IspInfo) -> bool:
        """A bot by its network: a hosting network, and (unless told to drop them all) a UA that lies."""
        if isp.asn is None or isp.asn not in self.hosting:
            return False
        if self.settings.datacenter_traffic == "drop":
            return True
        return (
            not hints.sent
            and info.browser in _HINTING_BROWSERS
            and info.os not in ("iOS", "iPadOS")
            and info.browser_version.isdigit()
            and int(info.browser_version) >= 100
        )

    def isp_of(self, ip: str | None) -> IspInfo:
        if ip is None or self.isp is None:
            return UNKNOWN_ISP
        return self.isp.lookup(ip)

    def build(self, hit: Hit) -> Event:
        """Gate the hit, then reduce it to an Event. Raises :class:`Dropped`."""
        p = hit.payload
        site = self.site_for(p.domain)
        if site is None:
            raise Dropped("unknown_site")
        # p.name is normalised already (collector.payload).
        name = p.name if p.name in BUILTIN_EVENTS else self.custom_events.get(p.name)
        if not name:
            raise Dropped("unknown_event")
        page = self._page(p.url, p.hash_mode)
        if page is None:
            raise Dropped("spam")
        origin, path, utm = page
        scheme, host = origin.split(":", 1)
        if not self.settings.allow_localhost and (scheme == "file" or host in _LOCAL_HOSTS):
            raise Dropped("localhost")
        info = self.ua.parse(hit.ua, hit.hints)
        if info.bot:
            raise Dropped("bot", info.bot_kind)
        isp = self.isp_of(hit.ip)
        if self._from_datacenter(info, hit.hints, isp):
            raise Dropped("bot", "datacenter")

        ref: Referrer = self._referrer(p.referrer, site)
        return Event(
            site=site,
            ts=hit.ts,
            name=name[:MAX_TEXT],
            path=path,
            referrer_source=source_of(ref, utm) if (ref.source or utm.source) else None,
            referrer_host=ref.host,
            referrer_path=ref.path,
            channel=channel_of(ref, utm),
            utm_source=utm.source,
            utm_medium=utm.medium,
            utm_campaign=utm.campaign,
            utm_content=utm.content,
            utm_term=utm.term,
            browser=info.browser[:MAX_TEXT],
            browser_version=info.browser_version[:20],
            os=info.os[:MAX_TEXT],
            os_version=info.os_version[:20],
            device=info.device,
            asn=isp.asn,
            isp=isp.org[:MAX_TEXT] if isp.org else None,
            network_domain=hit.network_domain,
            day_key=self.keys.key(hit.ts, site, hit.ip or "", hit.ua),
            engaged_ms=p.engaged_ms,
            scroll_depth=p.scroll_depth,
        )
