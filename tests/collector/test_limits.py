"""`collector serve` limits against a real server with nobody in front: head size, head and body deadlines.

Raw sockets, because the point is what a client that does not play by the
rules gets: an HTTP library would refuse to send most of these requests.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CHROME_UA, Server, default_collector_env, running_collector

SITE = "www.onecloud.example"
BODY = b'{"n":"pageview","u":"https://www.onecloud.example/limits","d":"www.onecloud.example"}'
MB = 1024 * 1024


def rss_kb(pid: int) -> int:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert m
    return int(m.group(1))


def exchange(server: Server, request: bytes, *, timeout: float = 10) -> bytes:
    """Send ``request`` (as far as the server lets us) and return all the server answered."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is still in our receive queue
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def status_of(answer: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    return int(m.group(1)) if m else 0


def event_request(ua: str | bytes, path: str = "/api/event") -> bytes:
    ua_bytes = ua.encode() if isinstance(ua, str) else ua
    if path == "/api/event":
        head = f"POST {path} HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain\r\nContent-Length: {len(BODY)}\r\n"
        return head.encode() + b"Connection: close\r\nUser-Agent: " + ua_bytes + b"\r\n\r\n" + BODY
    return (
        f"GET {path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n".encode() + b"User-Agent: " + ua_bytes + b"\r\n\r\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, isp_db: Path) -> Iterator[Server]:
    """One collector for the file: every test opens its own connections, and each deadline runs per connection."""
    env = {**default_collector_env(isp_db), "ANALYTICS_HEADER_TIMEOUT": "1", "ANALYTICS_BODY_TIMEOUT": "1"}
    with running_collector(tmp_path_factory.mktemp("limits") / "data", env) as s:
        yield s


def test_unique_megabyte_user_agents_are_refused_and_memory_stays_flat(server: Server) -> None:
    # Issue 13, item 1: 1,000 unique 1 MB UAs took a collector from 85 MB to 1,052 MB, and it stayed there.
    assert status_of(exchange(server, event_request(CHROME_UA))) == 202
    assert status_of(exchange(server, event_request(CHROME_UA, "/privacy"))) == 200
    pid = server.proc.pid
    filler = b"x" * MB

    def flood(first: int, n: int) -> Counter[int]:
        seen: Counter[int] = Counter()
        for i in range(first, first + n):
            ua = b"Mozilla/5.0 (%d) " % i + filler  # unique in its first characters, as a cache key would be
            seen[status_of(exchange(server, event_request(ua, "/privacy" if i % 2 else "/api/event")))] += 1
        return seen

    flood(0, 20)  # warm-up: the first rejections' buffers are allocated once
    before = rss_kb(pid)
    seen = flood(20, 500)
    middle = rss_kb(pid)
    seen += flood(520, 500)
    after = rss_kb(pid)
    assert seen == Counter({431: 1000}), seen
    assert after - before < 60 * 1024, f"RSS grew by {(after - before) / 1024:.0f} MB"
    assert after - middle < 10 * 1024, f"RSS still growing: +{(after - middle) / 1024:.0f} MB in the second half"
    # A head just under the cap still counts; the server is fine.
    assert status_of(exchange(server, event_request(CHROME_UA + " x" * 7000))) == 202


def test_a_head_arriving_in_one_read_is_measured_exactly(server: Server) -> None:
    # 20 KB arrives in one read, so the head completes before the byte count could catch it.
    answer = exchange(server, event_request(CHROME_UA + " x" * 10_000))
    assert status_of(answer) == 431 and b"connection: close" in answer
    many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 200) for i in range(100))  # many small headers
    answer = exchange(server, event_request(CHROME_UA.encode() + b"\r\n" + many.rstrip(b"\r\n")))
    assert status_of(answer) == 431


def test_a_trickling_head_is_cut_off(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"POST /api/event HTTP/1.1\r\nHost: c\r\n")
        answer = b""
        # Keep trickling: the deadline runs from the connection, not from the last byte.
        try:
            for _ in range(100):  # 20 s at most, with a 1 s deadline: fail rather than hang
                if answer:
                    break
                s.sendall(b"X: y\r\n")
                s.settimeout(0.2)
                try:
                    answer = s.recv(4096)
                except TimeoutError:
                    continue
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert status_of(answer) == 408


def test_an_idle_connection_is_closed(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        assert status_of(s.recv(4096)) == 408  # nothing sent at all: the head deadline still runs


def test_a_trickling_body_is_cut_off(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        head = f"POST /api/event HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain\r\nContent-Length: {len(BODY)}\r\n"
        s.sendall(head.encode() + f"User-Agent: {CHROME_UA}\r\n\r\n".encode() + BODY[:10])
        assert s.recv(4096) == b""  # closed without an answer: the event was never acknowledged
    assert "Traceback" not in server.log()


def test_a_connection_answered_before_its_body_ended_does_not_stay_open(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        head = "POST /api/event HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain\r\nContent-Length: 20000\r\n\r\n"
        s.sendall(head.encode())
        assert status_of(s.recv(4096)) == 413  # answered from Content-Length, body unread
        s.sendall(b"x" * 20000)  # the body arrives after all; then the client goes quiet
        assert status_of(s.recv(4096)) == 408  # the head deadline runs again, and the socket is closed
        assert s.recv(4096) == b""
