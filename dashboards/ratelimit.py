"""Login limits (PRIVACY.md rule 10): failed logins per address, per account and per known browser; bounded hashing.

Counting uses the ``limits`` library's moving window over in-memory storage: the
dashboards run as one process, and a restart forgetting the counters is an
acceptable trade for keeping no client addresses on disk.

An attempt is *admitted* before its password is checked, synchronously on the
event loop, so the decision and the reservation are one step: N concurrent
wrong passwords take N places of the window before any argon2 hash runs (the
library counts recorded failures; the attempts in flight are added to them
here, because a moving window has no "reserve, then give back" operation). A
success gives its place back; a failure is recorded in the library.

Whose places an attempt takes:

- a browser that has logged in to this account before (a signed "known device"
  cookie, see :class:`dashboards.sessions.KnownDevices`) counts only against its
  own bucket, so strangers exhausting the address or account limits cannot lock
  the account's owner out of a browser they have used;
- every other attempt counts against its client address first (IPv6 by /64,
  which one host usually holds entirely), then against the account name typed
  (whether or not it exists, so a refusal says nothing about existence).

Argon2 takes ~64 MiB per check, so at most ``hash_slots`` run at once, plus one
slot only known browsers may use; an attempt finding no slot is refused (429
with Retry-After), never queued.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

Kind = Literal["address", "account", "device"]
Reason = Kind | Literal["busy"]
Bucket = tuple[Kind, str]
IPV6_PREFIX = 64
NAME_CAP = 64


def account_key(name: str) -> str:
    return name.strip().lower()[:NAME_CAP]


def address_key(address: str) -> str:
    """The address bucket: an IPv4 address, or the /64 an IPv6 address is in (anything else as given)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:NAME_CAP]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Reason
    retry_after: int  # whole seconds, at least 1


@dataclass(slots=True)
class Attempt:
    """An admitted attempt: its reserved places and its hashing slot, until it is settled once."""

    _limiter: LoginLimiter
    _buckets: tuple[Bucket, ...]
    _slot: threading.BoundedSemaphore
    _done: bool = field(default=False)

    def failed(self) -> None:
        self._settle(failed=True)

    def succeeded(self) -> None:
        self._settle(failed=False)

    def abandon(self) -> None:
        """Give the places back without a verdict (the check did not complete); no-op once settled."""
        if not self._done:
            self._settle(failed=None)

    def _settle(self, *, failed: bool | None) -> None:
        if self._done:
            return
        self._done = True
        self._slot.release()
        self._limiter._settle(self._buckets, failed)


class LoginLimiter:
    def __init__(self, per_account: str, per_address: str, hash_slots: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[Kind, list[RateLimitItem]] = {
            "account": parse_many(per_account),
            # A known browser gets the account's allowance for itself.
            "device": parse_many(per_account),
            "address": parse_many(per_address),
        }
        self._in_flight: Counter[Bucket] = Counter()
        self._slots = threading.BoundedSemaphore(hash_slots)
        self._known_slot = threading.BoundedSemaphore(1)

    def _refusal(self, kind: Kind, key: str) -> Refused | None:
        """None if the bucket has room for one more attempt (recorded failures plus those in flight)."""
        for item in self._items[kind]:
            stats = self._limiter.get_window_stats(item, kind, key)
            if stats.remaining - self._in_flight[(kind, key)] < 1:
                # Full with recorded failures: room again when the oldest leaves the window;
                # full only with attempts in flight: as soon as one of them is settled.
                wait = stats.reset_time - time.time() if stats.remaining < 1 else 1.0
                return Refused(kind, max(1, math.ceil(wait)))
        return None

    def admit(self, account: str, address: str, device: str | None) -> Attempt | Refused:
        """Reserve this attempt's places and a hashing slot, or say why not.

        Called on the event loop thread only, and it never awaits: checking and reserving are one step.
        """
        if device is not None:
            buckets: tuple[Bucket, ...] = (("device", device),)
        else:
            # The address first: past its own limit a stranger no longer counts against anyone's account.
            buckets = (("address", address_key(address)), ("account", account_key(account)))
        for kind, key in buckets:
            refused = self._refusal(kind, key)
            if refused is not None:
                return refused
        slot = self._slots
        if not slot.acquire(blocking=False):
            slot = self._known_slot
            if device is None or not slot.acquire(blocking=False):
                return Refused("busy", 1)
        for bucket in buckets:
            self._in_flight[bucket] += 1
        return Attempt(self, buckets, slot)

    def _settle(self, buckets: tuple[Bucket, ...], failed: bool | None) -> None:
        for kind, key in buckets:
            self._in_flight[(kind, key)] -= 1
            if self._in_flight[(kind, key)] <= 0:
                del self._in_flight[(kind, key)]
            for item in self._items[kind]:
                if failed:
                    self._limiter.hit(item, kind, key)
                elif failed is False and kind != "address":
                    # A good login clears the account's (or browser's) count; the address keeps its own.
                    self._limiter.clear(item, kind, key)


class ViewLimiter:
    """Views through shared links: per link and per client address (moving windows, in memory).

    A shared link is open to whoever holds it, so its views are bounded: at most
    ``per_link`` for one link from all addresses, and ``per_address`` from one
    address (IPv6 by /64) over all links and unknown tokens (guessing costs the
    guesser). Past a limit: 429 with Retry-After.
    """

    def __init__(self, per_link: str, per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._link = parse_many(per_link)
        self._address = parse_many(per_address)

    def _hit(self, items: list[RateLimitItem], *keys: str) -> int | None:
        for item in items:
            if not self._limiter.hit(item, *keys):
                stats = self._limiter.get_window_stats(item, *keys)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None

    def address(self, address: str) -> int | None:
        """None if this address may view one more page, else the seconds to wait."""
        return self._hit(self._address, "share-address", address_key(address))

    def link(self, link_id: int) -> int | None:
        return self._hit(self._link, "share-link", str(link_id))
