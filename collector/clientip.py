"""Which address is the client: the socket peer, or X-Forwarded-For behind a trusted proxy."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, trusted_proxies: tuple[str, ...]) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in trusted_proxies
        )
        self.is_trusted = lru_cache(maxsize=1024)(self._is_trusted)

    def _is_trusted(self, addr: str) -> bool:
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._networks)

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
        hops = [h.strip() for h in forwarded_for.split(",")]
        for hop in reversed(hops):
            if not hop:
                continue
            candidate = _strip_port(hop)
            if self.is_trusted(candidate):
                continue
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                return peer  # garbage in the header: fall back to the proxy itself
            return candidate
        return peer


def _strip_port(hop: str) -> str:
    if hop.startswith("["):  # [v6]:port
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop
