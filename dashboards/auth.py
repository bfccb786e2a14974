"""Who is asking: a session cookie, or a trusted reverse proxy's user header; and from where.

The proxy header (single sign-on in front of the dashboards) is believed only
when the TCP peer is one of the configured trusted proxies, and only for a user
that exists here and is enabled: the proxy authenticates, the roles stay ours.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from dashboards.sessions import COOKIE, Sessions
from dashboards.users import User, Users

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    csrf: str


class Authenticator:
    def __init__(
        self, sessions: Sessions, users: Users, secret: bytes, proxy_header: str, trusted_proxies: tuple[str, ...]
    ) -> None:
        self.sessions = sessions
        self.users = users
        self._secret = secret
        self._proxy_header = proxy_header.lower()
        self._trusted: list[Network] = [ipaddress.ip_network(c, strict=False) for c in trusted_proxies]

    def _peer_trusted(self, peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted)

    def client_address(self, conn: HTTPConnection) -> str:
        """The socket peer, or the address a trusted proxy appended to X-Forwarded-For."""
        peer = conn.client.host if conn.client else ""
        if self._peer_trusted(peer):
            forwarded = [p.strip() for p in conn.headers.get("x-forwarded-for", "").split(",") if p.strip()]
            if forwarded:
                return forwarded[-1]
        return peer

    def identify(self, conn: HTTPConnection) -> Identity | None:
        if self._proxy_header:
            peer = conn.client.host if conn.client else ""
            name = conn.headers.get(self._proxy_header)
            if name and self._peer_trusted(peer):
                user = self.users.get(name.strip())
                if user is None or user.disabled:
                    return None
                # No session row for proxy logins: the CSRF token is derived from the secret instead.
                token = hmac.new(self._secret, b"proxy-csrf:" + user.name.encode(), hashlib.sha256).hexdigest()
                return Identity(user, token)
        session = self.sessions.load(conn.cookies.get(COOKIE))
        if session is None:
            return None
        return Identity(session.user, session.csrf)
