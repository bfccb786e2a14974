"""The suite's own helpers, where a mistake would show only as a rare failure of some other test."""

from __future__ import annotations

import os
import socket

import pytest

from tests.conftest import ephemeral_ports, free_port, pytest_xdist_auto_num_workers


def test_free_ports_are_bindable_and_outside_the_range_of_source_ports() -> None:
    # A port in the ephemeral range can be taken as a client connection's source port before the server
    # binds it (weed's volume server failed so once): the ports handed out must all lie below that range.
    low, high = ephemeral_ports()
    assert 1024 <= low <= high
    ports = [free_port() for _ in range(50)]
    if low > 11_000:
        assert all(10_000 <= p < low for p in ports), ports
    assert len(set(ports)) > 40  # drawn at random: workers rarely meet
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_auto_workers_are_one_more_than_the_cores(monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config) -> None:
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    assert pytest_xdist_auto_num_workers(pytestconfig) == len(os.sched_getaffinity(0)) + 1
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    assert pytest_xdist_auto_num_workers(pytestconfig) is None  # left to pytest-xdist, which reads it
