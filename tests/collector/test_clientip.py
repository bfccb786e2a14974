from __future__ import annotations

from collector.clientip import ClientAddress


def test_untrusted_peer_header_is_ignored() -> None:
    c = ClientAddress(())
    assert c.resolve("198.51.100.7", "8.8.8.8") == "198.51.100.7"


def test_trusted_proxy_header_is_used_right_to_left() -> None:
    c = ClientAddress(("10.0.0.0/8", "127.0.0.1/32"))
    assert c.resolve("127.0.0.1", "8.8.8.8") == "8.8.8.8"
    # A client-written entry on the left cannot override the one the proxy added.
    assert c.resolve("127.0.0.1", "1.2.3.4, 8.8.8.8") == "8.8.8.8"
    # Chains of trusted proxies are skipped.
    assert c.resolve("127.0.0.1", "8.8.8.8, 10.1.2.3") == "8.8.8.8"
    assert c.resolve("127.0.0.1", "[2001:4860:4860::8888]:443") == "2001:4860:4860::8888"
    assert c.resolve("127.0.0.1", "8.8.4.4:5555") == "8.8.4.4"


def test_garbage_header_falls_back_to_peer() -> None:
    c = ClientAddress(("127.0.0.1/32",))
    assert c.resolve("127.0.0.1", "not-an-ip") == "127.0.0.1"
    assert c.resolve("127.0.0.1", "") == "127.0.0.1"
    assert c.resolve("127.0.0.1", "10.0.0.1") == "10.0.0.1"
    assert c.resolve(None, "8.8.8.8") is None


def test_ipv4_mapped_peer_counts_as_trusted() -> None:
    c = ClientAddress(("127.0.0.1/32",))
    assert c.resolve("::ffff:127.0.0.1", "8.8.8.8") == "8.8.8.8"
