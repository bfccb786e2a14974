"""Gate and de-identify: a :class:`Hit` (the raw request view) in, an :class:`Event` out.

The ``Hit`` carries the IP address and the UA string; it exists only inside the
request handler and is never stored, logged or passed to the spool. Everything
that leaves this module is an ``Event``, which has no field for either.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from collector.boundedcache import BoundedCache
from collector.devices import NO_HINTS, Hints
from collector.isp import UNKNOWN_ISP, IspDatabase, IspInfo, hosting_asns
from collector.paths import NO_UTM, Utm, extract_utm, scrub_path
from collector.payload import Payload
from collector.props import PropDrop, clean_props, scrub_prop
from collector.reasons import DropKind, DropReason, drop_kind
from collector.referrer import Referrer, channel_of, parse_referrer, source_of
from collector.salts import DayKeys
from collector.schema import MAX_TEXT, Event, new_event
from collector.scrub import normalise, scrub_value
from collector.settings import Settings
from collector.siteconfig import BUILTIN_EVENTS, Site, SiteConfig, seed_config, site_key
from collector.useragent import UAInfo, UAParser

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1", ""})
_CACHE_ENTRIES = 20000
# A cache slot, the key tuple and the value's tuple or dataclass, roughly (CPython 3.11, 64-bit).
_ENTRY_OVERHEAD = 240
_size = sys.getsizeof


class Page(NamedTuple):
    """A page URL as the pipeline keeps it (cached per URL): scheme and host for the localhost gate, the rest stored."""

    scheme: str
    host: str
    path: str  # scrubbed (collector.paths)
    utm: Utm


def _page_bytes(key: tuple[str, bool], page: Page) -> int:
    utm = page.utm
    fields = (utm.source, utm.medium, utm.campaign, utm.content, utm.term)
    return (
        _ENTRY_OVERHEAD
        + _size(key[0])
        + _size(page.scheme)
        + _size(page.host)
        + _size(page.path)
        + sum(_size(f) for f in fields if f is not None)
        + (0 if utm is NO_UTM else _size(utm))
    )


def _referrer_bytes(key: tuple[str, str], ref: Referrer) -> int:
    # The site (key[1]) is the allowlist's own string, shared: not counted.
    fields = (ref.source, ref.host, ref.path)
    return _ENTRY_OVERHEAD + _size(key[0]) + _size(ref) + sum(_size(f) for f in fields if f is not None)


class Hit(NamedTuple):
    """The raw request view. Never leaves the request handler (a tuple: one is built per request)."""

    payload: Payload
    ip: str | None
    ua: str
    ts: int
    network_domain: str | None = None
    hints: Hints = NO_HINTS  # Sec-CH-UA-Platform / -Mobile, reduced to a closed set


class Dropped(Exception):
    """A deliberate, counted drop: answered 202 with ``X-Drop-Reason``; ``kind`` says why a bot is one.

    ``site``: the allowlisted site it was for (None for ``unknown_site``), for the per-site drop counts.
    """

    def __init__(self, reason: DropReason, kind: DropKind | None = None, site: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.site = site


# Browsers that send client hints on every HTTPS request since version 89-90: one that claims
# to be such a browser and sends none is a script wearing its UA.
_HINTING_BROWSERS = frozenset({"Chrome", "Edge", "Opera"})


@dataclass(frozen=True, slots=True)
class Allowlists:
    """What one site configuration allows, in the form the hot path looks things up."""

    config: SiteConfig
    sites: dict[str, Site]  # site_key(domain) -> site; "www.x" and "x" name the same site
    # Per site: allowlisted custom event names, normalised like the names that arrive (so
    # "ｓｉｇｎｕｐ" and "sign%75p" are "signup"), each mapped to what is stored: the
    # name scrubbed like any visitor string.
    events: dict[str, dict[str, str]]
    prop_keys: dict[str, dict[str, str]]  # per site: normalised key -> key as configured
    origins: frozenset[bytes]  # pages that may post events from the browser (CORS), as header bytes
    # The domain as the beacon sends it, mostly exactly a listed one: one lookup, no splitting.
    exact: dict[str, str]

    @classmethod
    def of(cls, config: SiteConfig) -> Allowlists:
        sites = {site_key(s.domain): s for s in config.sites}
        exact = {k: s.domain for bare, s in sites.items() for k in (bare, "www." + bare)}
        events = {s.domain: {normalise(n).strip(): scrub_value(n) for n in s.custom_events} for s in config.sites}
        keys = {s.domain: {normalise(k).strip(): k for k in s.prop_keys} for s in config.sites}
        origins = {
            f"{scheme}://{host}".encode()
            for bare in sites
            for host in (bare, "www." + bare)
            for scheme in ("https", "http")
        }
        return cls(config, sites, events, keys, frozenset(origins), exact)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        ua: UAParser,
        isp: IspDatabase | None,
        keys: DayKeys,
        config: Callable[[], SiteConfig] | None = None,
        on_prop_drop: Callable[[PropDrop], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ua = ua
        self.isp = isp
        self.keys = keys
        self.hosting = hosting_asns() if settings.datacenter_traffic != "keep" else frozenset()
        # The site configuration in force (collector.siteconfig.Watcher.current, re-read on change);
        # without one, what the legacy settings describe.
        if config is None:
            seed = seed_config(settings.sites, settings.custom_events)

            def config() -> SiteConfig:
                return seed

        self.config: Callable[[], SiteConfig] = config
        self.on_prop_drop = on_prop_drop
        self._allow = Allowlists.of(config())
        # Pages and referrers repeat far more than they vary: cache their parse per
        # worker (memory only, bounded by entries and bytes, admitted on second sight once full:
        # like the UA cache, collector.boundedcache; never written anywhere). Their keys are
        # visitor-chosen strings of up to 2,048 characters, so a count bound alone is not enough.
        limit = settings.page_cache_bytes
        self._pages: BoundedCache[tuple[str, bool], Page] = BoundedCache(_CACHE_ENTRIES, limit, _page_bytes)
        self._referrers: BoundedCache[tuple[str, str], Referrer] = BoundedCache(_CACHE_ENTRIES, limit, _referrer_bytes)
        self._scrub_prop = lru_cache(maxsize=20000)(scrub_prop)

    def _prop(self, key: str, value: str, event: str) -> str:
        # Property values repeat like pages do (plan=Business); short ones are cached, so the
        # cache stays small (at most ~20,000 x 256 characters), long ones are scrubbed each time.
        return self._scrub_prop(key, value, event) if len(value) <= 256 else scrub_prop(key, value, event)

    def _page(self, url: str, hash_mode: bool) -> Page | None:
        key = (url, hash_mode)
        page = self._pages.get(key)
        if page is None:
            page = self._page_uncached(url, hash_mode)
            if page is not None:  # unparsable URLs are dropped (and counted), not remembered
                self._pages.offer(key, page)
        return page

    def _referrer(self, referrer: str | None, site: str) -> Referrer:
        if not referrer:
            return parse_referrer(referrer, site)
        key = (referrer, site)
        ref = self._referrers.get(key)
        if ref is None:
            ref = parse_referrer(referrer, site)
            self._referrers.offer(key, ref)
        return ref

    def _page_uncached(self, url: str, hash_mode: bool) -> Page | None:
        """(scheme, host, scrubbed path, UTM values) of a page URL; ``None`` if it cannot be parsed."""
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
        return Page(parts.scheme, host, scrub_path(path), utm)

    @property
    def allow(self) -> Allowlists:
        """The allowlists of the configuration in force (rebuilt once when it changes)."""
        config = self.config()
        if config is not self._allow.config:
            self._allow = Allowlists.of(config)
        return self._allow

    def site_for(self, domain: str) -> str | None:
        allow = self.allow
        exact = allow.exact.get(domain)
        if exact is not None:
            return exact
        # Plausible allows "a.com,b.com" (roll-up): the first allowed domain wins.
        for candidate in domain.split(","):
            site = allow.sites.get(site_key(candidate))
            if site is not None:
                return site.domain
        return None

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
        allow = self.allow
        # p.name is normalised already (collector.payload).
        name = p.name if p.name in BUILTIN_EVENTS else allow.events[site].get(p.name)
        if not name:
            raise Dropped("unknown_event", site=site)
        page = self._page(p.url, p.hash_mode)
        if page is None:
            raise Dropped("unparsable_url", site=site)
        scheme, host, path, utm = page
        if not self.settings.allow_localhost and (scheme == "file" or host in _LOCAL_HOSTS):
            raise Dropped("localhost", site=site)
        info = self.ua.parse(hit.ua, hit.hints)
        if info.bot:
            raise Dropped("bot", drop_kind(info.bot_kind), site)
        isp = self.isp_of(hit.ip)
        if self._from_datacenter(info, hit.hints, isp):
            raise Dropped("bot", "datacenter", site)

        ref: Referrer = self._referrer(p.referrer, site)
        day_key = self.keys.key(hit.ts, site, hit.ip or "", hit.ua)  # may raise SaltUnavailable: nothing stored
        props, dropped = clean_props(p.props, allow.prop_keys[site], name, self._prop) if p.props else ((), [])
        if self.on_prop_drop is not None:
            for reason in (*p.props_dropped, *dropped):
                self.on_prop_drop(reason)
        # Positional, in the inventory's order (collector.schema.new_event: the same Event, built faster).
        return new_event(
            site,
            hit.ts,
            name[:MAX_TEXT],
            path,
            source_of(ref, utm) if (ref.source or utm.source) else None,
            ref.host,
            ref.path,
            channel_of(ref, utm),
            utm.source,
            utm.medium,
            utm.campaign,
            utm.content,
            utm.term,
            info.browser[:MAX_TEXT],
            info.browser_version[:20],
            info.os[:MAX_TEXT],
            info.os_version[:20],
            info.device,
            isp.asn,
            isp.org[:MAX_TEXT] if isp.org else None,
            hit.network_domain,
            day_key,
            p.engaged_ms,
            p.scroll_depth,
            props,
        )
