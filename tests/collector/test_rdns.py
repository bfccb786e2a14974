"""Network domain by reverse DNS, against a real dnsmasq on loopback (and a resolver that never answers)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.rdns import NetworkDomains, parse_server
from tests import web
from tests.conftest import CHROME_UA, free_port, running_collector, sealed_records, wait_until

DNSMASQ = shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin:/sbin")

# address → PTR name served by the test's dnsmasq (no upstream: nothing leaves loopback).
PTR = {
    "81.2.69.160": "pool-81-2-69-160.example-isp.co.uk",
    "54.1.2.3": "ec2-54-1-2-3.compute-1.amazonaws.com",  # private PSL section must not apply
    "81.2.69.161": "81-2-69-161.com",  # a "domain" that is the address: not kept
    "81.2.69.162": "co.uk",  # a public suffix has no registrable domain
    "2a00:1450:4001:80b::200e": "fra16s45-in-x0e.1e100.net",
}


def _ptr_name(ip: str) -> str:
    import ipaddress

    return ipaddress.ip_address(ip).reverse_pointer


def _free_dns_port() -> int:
    """A loopback port free for both UDP and TCP (dnsmasq listens on both), from below the ephemeral range:
    a UDP port from bind(0) can be the source port of some test's TCP connection, and dnsmasq then fails
    with "address already in use" (it did, once, in a fresh-clone CI run)."""
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if DNSMASQ is None:
        pytest.fail("dnsmasq is not installed (it is in .system-deps; `make test` installs it as root)")
    base = tmp_path_factory.mktemp("dnsmasq")
    for attempt in range(3):  # a port taken between the check and dnsmasq's bind: another port
        port = _free_dns_port()
        log = base / f"dnsmasq-{attempt}.log"
        args = [
            DNSMASQ,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            f"--port={port}",
            "--pid-file=",
            "--log-facility=-",
            "--cache-size=0",
        ]
        args += [f"--ptr-record={_ptr_name(ip)},{name}" for ip, name in PTR.items()]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while b"started" not in log.read_bytes() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if b"started" in log.read_bytes():
            break
        proc.kill()
        proc.wait(timeout=10)
        if b"in use" not in log.read_bytes() or attempt == 2:
            raise RuntimeError(f"dnsmasq did not start: {log.read_text()}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def silent_resolver() -> Iterator[tuple[str, list[bytes]]]:
    """A UDP socket that reads queries and never answers (a dead or filtered resolver)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    received: list[bytes] = []
    stop = threading.Event()

    def swallow() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                received.append(sock.recv(4096))

    t = threading.Thread(target=swallow, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", received
    finally:
        stop.set()
        t.join()
        sock.close()


#: dnspython's default resolver lifetime (s): a lookup that took half of it did not use our timeout.
LIBRARY_LIFETIME = 5.0


def lookup(server: str, ips: list[str], timeout: float = 0.5, cache: int = 100) -> tuple[list[str | None], float]:
    async def go() -> tuple[list[str | None], float]:
        nd = NetworkDomains(server, timeout, cache)
        t0 = time.monotonic()
        out = [await nd.domain_of(ip) for ip in ips]
        return out, time.monotonic() - t0

    return asyncio.run(go())


def test_registrable_domain_from_real_ptr_records(dnsmasq: str) -> None:
    ips = list(PTR) + ["81.2.69.163"]  # the last one has no PTR record
    domains, _ = lookup(dnsmasq, ips)
    assert domains == ["example-isp.co.uk", "amazonaws.com", None, None, "1e100.net", None]


def test_answers_are_cached_in_memory_and_bounded(dnsmasq: str) -> None:
    async def go() -> None:
        nd = NetworkDomains(dnsmasq, 0.5, 2)
        assert await nd.domain_of("81.2.69.160") == "example-isp.co.uk"
        assert await nd.domain_of("54.1.2.3") == "amazonaws.com"
        assert await nd.domain_of("81.2.69.163") is None
        assert nd.cached() == 2  # bounded: the oldest answer was evicted
        # Served from memory: the resolver is no longer asked (point it at a dead address).
        nd.resolver.nameservers = ["127.0.0.1"]
        nd.resolver.port = 9
        assert await nd.domain_of("54.1.2.3") == "amazonaws.com"

    asyncio.run(go())


def test_timeout_returns_within_the_limit_and_stores_nothing() -> None:
    with silent_resolver() as (server, received):
        domains, took = lookup(server, ["81.2.69.160"], timeout=0.2)
        assert domains == [None]
        # Our 0.2 s applied, not the resolver library's own 5 s lifetime (a bound no loaded machine nears).
        assert took < LIBRARY_LIFETIME / 2
        wait_until("the query at the resolver", lambda: len(received) >= 1)  # sent; the answer never came
        before = len(received)

        async def concurrent() -> None:
            nd = NetworkDomains(server, 0.2, 100)
            results = await asyncio.gather(*(nd.domain_of("81.2.69.162") for _ in range(20)))
            assert results == [None] * 20

        asyncio.run(concurrent())
        # 20 requests for one address wait for one query together: not 20 queries.
        wait_until("the coalesced query", lambda: len(received) > before)
        assert len(received) - before < 20


def test_private_addresses_are_never_sent() -> None:
    with silent_resolver() as (server, received):
        domains, _ = lookup(server, ["10.1.2.3", "127.0.0.1", "192.168.1.1", "::1", "fe80::1", "nonsense"])
        assert domains == [None] * 6
        # Then one public address: its query is the first and only one the resolver sees.
        assert lookup(server, ["81.2.69.160"], timeout=0.2)[0] == [None]
        wait_until("the public query", lambda: len(received) >= 1)
        assert len(received) == 1 and b"\x03160\x0269\x012\x0281" in received[0]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_server(text: str, parsed: tuple[str, int]) -> None:
    assert parse_server(text) == parsed


@pytest.mark.parametrize("text", ["dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]:99999"])
def test_parse_server_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server(text)


ENV = {
    "ANALYTICS_SITES": "www.onecloud.example",
    "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
    "ANALYTICS_NETWORK_DOMAIN": "1",
}


def _post(url: str, ip: str) -> float:
    t0 = time.monotonic()
    r = web.post(
        url + "/api/event",
        json={"n": "pageview", "u": "https://www.onecloud.example/", "d": "www.onecloud.example"},
        headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip},
    )
    assert r.status_code == 202 and "x-drop-reason" not in r.headers, r.text
    return time.monotonic() - t0


def _records(data: Path, n: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while len(records := sealed_records(data)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return records


def test_end_to_end_network_domain(tmp_path: Path, dnsmasq: str) -> None:
    data = tmp_path / "data"
    with running_collector(data, {**ENV, "ANALYTICS_DNS_SERVER": dnsmasq}) as server:
        _post(server.url, "81.2.69.160")
        _post(server.url, "81.2.69.163")  # no PTR: nothing stored
        records = _records(data, 2)
        log = server.log()
    assert [(r["network_domain"], r["asn"]) for r in records] == [("example-isp.co.uk", 20712), (None, 20712)]
    for secret in ("81.2.69.160", "pool-81-2-69-160", "81.2.69.163"):  # neither address nor host name kept
        assert secret not in log
        for f in data.rglob("*"):
            if f.is_file() and f.suffix != ".mmdb":
                assert secret.encode() not in f.read_bytes(), f


def test_end_to_end_dead_resolver_does_not_hold_the_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with silent_resolver() as (dns_server, received):
        env = {**ENV, "ANALYTICS_DNS_SERVER": dns_server, "ANALYTICS_DNS_TIMEOUT_MS": "200"}
        with running_collector(data, env) as server:
            took = _post(server.url, "81.2.69.160")
            records = _records(data, 1)
    # The 200 ms timeout held the request, not the resolver library's own 5 s lifetime.
    assert received and took < LIBRARY_LIFETIME / 2
    assert records[0]["network_domain"] is None and records[0]["asn"] == 20712


def test_off_by_default_sends_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with silent_resolver() as (dns_server, received):
        env = {**ENV, "ANALYTICS_NETWORK_DOMAIN": "0", "ANALYTICS_DNS_SERVER": dns_server}
        with running_collector(data, env) as server:
            _post(server.url, "81.2.69.160")
            records = _records(data, 1)
        # The event is stored, so any lookup would have been sent before it; a probe of ours comes after.
        probe = b"probe"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            host, port = dns_server.split(":")
            s.sendto(probe, (host, int(port)))
        wait_until("our probe", lambda: len(received) >= 1)
    assert received == [probe] and records[0]["network_domain"] is None
