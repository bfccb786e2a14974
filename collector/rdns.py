"""Visitor address → registrable domain of its reverse DNS name (the "network domain").

Off by default (``ANALYTICS_NETWORK_DOMAIN``). When on, the visitor's address is
sent to the configured resolver in a PTR query: that is the one outbound call
the collector makes, and the docs say so. What is kept is only the registrable
domain by the ICANN section of the Public Suffix List
(``pool-1-2-3.example-isp.co.uk`` → ``example-isp.co.uk``), never the host name,
which often spells the address out.

The request never waits longer than the timeout; any failure (timeout, no PTR,
refused, malformed name) yields ``None`` and nothing is stored. Answers are
cached in memory only, bounded in size and age, keyed by address; the cache is
never written, logged or exported, and dies with the process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections import OrderedDict

import dns.asyncresolver
import dns.resolver
from publicsuffixlist import PublicSuffixList

_POSITIVE_TTL = 3600.0  # networks get renamed rarely; an hour keeps the cache fresh enough
_NEGATIVE_TTL = 300.0  # remember failures too, or every request of a silent network waits the timeout
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# A "registrable domain" that still carries an address (1-2-3-4.example) is not a network name.
_ADDRESS_LIKE = re.compile(r"\d{1,3}[-.]\d{1,3}[-.]\d{1,3}[-.]\d{1,3}|[0-9a-f]{4}[-:][0-9a-f]{1,4}[-:][0-9a-f]{1,4}")


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or bare IPv6 → (address, port); the host must be an IP."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":")) if rest.startswith(":") and rest[1:].isdigit() else -1
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p) if p.isdigit() else -1
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: expected an IP address, optionally with :port") from None
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: invalid port")
    return host, port


class NetworkDomains:
    """Async, cached, time-bounded reverse DNS reduced to the registrable domain."""

    def __init__(self, server: str, timeout: float, cache_size: int, psl: PublicSuffixList | None = None) -> None:
        self.timeout = timeout
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[str | None]] = {}
        # ICANN section only: the private section would make "compute-1.amazonaws.com"
        # a suffix, and the "registrable domain" would be the host name with the address in it.
        self.psl = psl or PublicSuffixList(only_icann=True)
        if server:
            host, port = parse_server(server)
            self.resolver = dns.asyncresolver.Resolver(configure=False)
            self.resolver.nameservers = [host]
            self.resolver.port = port
        else:
            try:
                self.resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
            except dns.resolver.NoResolverConfiguration:
                raise RuntimeError(
                    "ANALYTICS_NETWORK_DOMAIN is on but no system resolver is configured; set ANALYTICS_DNS_SERVER"
                ) from None
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout
        self.resolver.retry_servfail = False

    def registrable(self, hostname: str) -> str | None:
        name = hostname.rstrip(".").lower()
        if not name or not _HOSTNAME.match(name):
            return None
        domain = self.psl.privatesuffix(name)
        if not isinstance(domain, str) or _ADDRESS_LIKE.search(domain):
            return None
        return domain

    async def domain_of(self, ip: str) -> str | None:
        """The registrable domain of ``ip``'s PTR name, or ``None``; returns within ``timeout``."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if not addr.is_global:  # private, loopback, reserved: nothing public to learn, nothing to send
            return None
        now = time.monotonic()
        hit = self._cache.get(ip)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(ip)
            return hit[1]
        fut = self._inflight.get(ip)
        if fut is None:
            # One query per address, however many requests arrive while it runs.
            fut = asyncio.ensure_future(self._resolve(ip))
            self._inflight[ip] = fut
            fut.add_done_callback(lambda _f: self._inflight.pop(ip, None))
        try:
            # shield: a request that gives up must not cancel the query the others await.
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except TimeoutError:
            return None

    async def _resolve(self, ip: str) -> str | None:
        domain: str | None = None
        try:
            answer = await asyncio.wait_for(self.resolver.resolve_address(ip), self.timeout)
            for rr in answer:
                domain = self.registrable(str(rr.target))
                if domain:
                    break
        except Exception:  # timeout, NXDOMAIN, refused, garbage: all mean "unknown"
            domain = None  # and nothing is logged: the details would name the address
        self._remember(ip, domain)
        return domain

    def _remember(self, ip: str, domain: str | None) -> None:
        if self.cache_size <= 0:
            return
        ttl = _POSITIVE_TTL if domain else _NEGATIVE_TTL
        self._cache[ip] = (time.monotonic() + ttl, domain)
        self._cache.move_to_end(ip)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def cached(self) -> int:
        return len(self._cache)
