"""The suite's own helpers, where a mistake would show only as a rare failure of some other test."""

from __future__ import annotations

import socket

from tests.conftest import ephemeral_ports, free_port


def test_free_ports_are_bindable_and_outside_the_range_of_source_ports() -> None:
    # A port in the ephemeral range can be taken as a client connection's source port before the server
    # binds it (weed's volume server failed so once): the ports handed out must all lie below that range.
    low, high = ephemeral_ports()
    assert 1024 <= low <= high
    ports = [free_port() for _ in range(50)]
    if low > 11_000:
        assert all(10_000 <= p < low for p in ports), ports
    assert len(set(ports)) > 40  # drawn at random: two workers rarely meet
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))
