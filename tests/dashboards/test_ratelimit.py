"""The login limiter on its own: places reserved before any check, the address first, slots bounded."""

from __future__ import annotations

from dashboards.ratelimit import Attempt, LoginLimiter, Refused, address_key


def _admitted(result: Attempt | Refused) -> Attempt:
    assert isinstance(result, Attempt), result
    return result


def test_attempts_in_flight_count_before_they_are_settled() -> None:
    limiter = LoginLimiter("3/15minutes", "100/15minutes", hash_slots=10)
    flying = [_admitted(limiter.admit("alice", "192.0.2.1", None)) for _ in range(3)]
    # Nothing recorded yet, but three places are taken: a fourth attempt is refused unchecked.
    assert limiter.admit("Alice ", "192.0.2.2", None) == Refused("account", 1)
    flying[0].succeeded()  # a success gives its place back (and clears the account's count)
    fourth = _admitted(limiter.admit("alice", "192.0.2.3", None))
    for attempt in (*flying[1:], fourth):
        attempt.failed()
        attempt.failed()  # settled once only
    refused = limiter.admit("alice", "192.0.2.4", None)
    assert isinstance(refused, Refused) and refused.reason == "account" and refused.retry_after > 60


def test_the_address_is_checked_first_and_ipv6_counts_per_64() -> None:
    limiter = LoginLimiter("100/15minutes", "2/15minutes", hash_slots=10)
    for name in ("a", "b"):
        _admitted(limiter.admit(name, "2001:db8:1:2::1", None)).failed()
    # Another address of the same /64, another account: the address is spent.
    refused = limiter.admit("carol", "2001:db8:1:2:ffff::9", None)
    assert isinstance(refused, Refused) and refused.reason == "address"
    _admitted(limiter.admit("carol", "2001:db8:1:3::1", None)).abandon()
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"


def test_hash_slots_are_bounded_and_one_is_kept_for_known_browsers() -> None:
    limiter = LoginLimiter("100/15minutes", "100/15minutes", hash_slots=2)
    strangers = [_admitted(limiter.admit(f"u{i}", "192.0.2.1", None)) for i in range(2)]
    assert limiter.admit("u3", "192.0.2.1", None) == Refused("busy", 1)  # refused, not queued
    known = _admitted(limiter.admit("owner", "192.0.2.1", "device-1"))
    assert limiter.admit("other", "192.0.2.1", "device-2") == Refused("busy", 1)
    strangers[0].abandon()
    known.succeeded()
    _admitted(limiter.admit("u3", "192.0.2.1", None))


def test_a_known_browser_has_its_own_count() -> None:
    limiter = LoginLimiter("2/15minutes", "2/15minutes", hash_slots=2)
    for _ in range(2):
        _admitted(limiter.admit("owner", "192.0.2.1", None)).failed()
    assert isinstance(limiter.admit("owner", "192.0.2.1", None), Refused)  # address and account spent
    _admitted(limiter.admit("owner", "192.0.2.1", "device-1")).failed()
    _admitted(limiter.admit("owner", "192.0.2.1", "device-1")).failed()
    refused = limiter.admit("owner", "192.0.2.1", "device-1")
    assert isinstance(refused, Refused) and refused.reason == "device"
