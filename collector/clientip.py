"""Which address is the client: the socket peer, or X-Forwarded-For behind a trusted proxy.

This runs on every request, with a different client address each time, so the
trusted-proxy test is integer arithmetic on ``inet_pton`` output (about a
microsecond) rather than ``ipaddress`` objects (tens of microseconds).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

_V4_MAPPED_PREFIX = 0xFFFF


def _parse(addr: str) -> tuple[int, int] | None:
    """(IP version, address as an integer), IPv4-mapped IPv6 read as IPv4; None if not an address."""
    if ":" not in addr:  # an IPv6 address always has one: no exception raised and caught for it
        try:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
        except OSError:
            return None
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
    except OSError:
        return None
    if value >> 32 == _V4_MAPPED_PREFIX:
        return 4, value & 0xFFFFFFFF
    return 6, value


class ClientAddress:
    def __init__(self, trusted_proxies: tuple[str, ...]) -> None:
        nets = [ipaddress.ip_network(c, strict=False) for c in trusted_proxies]
        # (version, network address, netmask) as integers.
        self._networks = tuple((n.version, int(n.network_address), int(n.netmask)) for n in nets)
        # Peers are few (the proxies themselves): cache their verdict.
        self.is_trusted = lru_cache(maxsize=1024)(self._is_trusted)

    def _is_trusted(self, addr: str) -> bool:
        if not self._networks:
            return False
        parsed = _parse(addr)
        if parsed is None:
            return False
        return self._in_trusted(parsed)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client address; ``None`` when there is no usable one.

        X-Forwarded-For is read right to left, skipping trusted proxies: the first
        address not in the trusted set is the client. Anything a client wrote
        further left is ignored, so a client cannot choose its own address.
        """
        if peer is None:
            return None
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        for hop in reversed(forwarded_for.split(",")):
            candidate = _strip_port(hop.strip())
            if not candidate:
                continue
            parsed = _parse(candidate)
            if parsed is None:
                return peer  # garbage in the header: fall back to the proxy itself
            if self._in_trusted(parsed):
                continue  # another trusted proxy in the chain
            return candidate
        return peer

    def _in_trusted(self, parsed: tuple[int, int]) -> bool:
        version, value = parsed
        for v, net, mask in self._networks:  # a plain loop: a generator per request costs more
            if v == version and value & mask == net:
                return True
        return False


def _strip_port(hop: str) -> str:
    if hop.startswith("["):  # [v6]:port
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop
