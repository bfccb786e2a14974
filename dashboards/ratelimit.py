"""Failed-login limits per account name and per client address (PRIVACY.md rule 10).

Uses the ``limits`` library's moving-window strategy with in-memory storage:
the dashboards run as one process, and a restart forgetting the counters is an
acceptable trade for keeping no client addresses on disk.
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class LoginLimiter:
    def __init__(self, per_account: str, per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._account: list[RateLimitItem] = parse_many(per_account)
        self._address: list[RateLimitItem] = parse_many(per_address)

    def _checks(self, account: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        acct = account.strip().lower()[:64]
        return [(i, "account", acct) for i in self._account] + [(i, "address", address) for i in self._address]

    def allowed(self, account: str, address: str) -> bool:
        """May this login attempt be checked at all? (Blocked attempts are not even verified.)"""
        return all(self._limiter.test(item, kind, key) for item, kind, key in self._checks(account, address))

    def failed(self, account: str, address: str) -> None:
        for item, kind, key in self._checks(account, address):
            self._limiter.hit(item, kind, key)

    def succeeded(self, account: str) -> None:
        # A good login clears the account's count (the address keeps its own).
        for item in self._account:
            self._limiter.clear(item, "account", account.strip().lower()[:64])
