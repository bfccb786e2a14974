"""Request limits of a real `dashboards serve` process (issue 13 item 8): bodies are capped while they
stream in, and no page number makes the audit log fail."""

from __future__ import annotations

import select
import socket
from pathlib import Path

import pytest

from tests import web
from tests.conftest import Server
from tests.dashboards.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    DEMO,
    Admin,
    login,
    memory_kib,
    reset_peak_rss,
    running_dashboards,
)

HUGE = 200 * 1024 * 1024


def _send_until_answered(url: str, head: bytes, piece: bytes, total: int, end: bytes = b"") -> tuple[bytes, int]:
    """Send ``head``, then up to ``total`` bytes in ``piece``s and ``end``; stop as soon as the server answers.

    Returns the answer and how many body bytes were sent. A server that read the whole body first
    would take all ``total`` bytes; one that caps it answers after a few.
    """
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(head)
        sent = 0
        while sent < total:
            readable, writable, _ = select.select([s], [s], [], 60)
            if readable:
                break
            if writable:
                try:
                    s.sendall(piece)
                except OSError:  # the server closed the connection: read what it said
                    break
                sent += len(piece)
        else:
            s.sendall(end)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # it closed without reading the rest: the answer came before the reset
    return answer, sent


def _api_head(key: str, framing: bytes) -> bytes:
    return (
        b"POST /api/v2/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n" + framing + b"\r\n"
    )


def test_a_huge_query_body_is_refused_while_it_streams_in(seeded: Path) -> None:
    with running_dashboards(seeded) as server, login(server.url, ADMIN, ADMIN_PASSWORD) as c:
        key = Admin(c).create_key("big-body")
        query = {"site_id": DEMO, "metrics": ["visitors"], "date_range": "7d"}
        auth = {"authorization": f"Bearer {key}"}
        assert web.post(server.url + "/api/v2/query", json=query, headers=auth, timeout=60).status_code == 200
        pid = server.proc.pid
        reset_peak_rss(pid)
        start = memory_kib(pid)["VmRSS"]
        # 200 MB of chunked body (no length announced): answered after the first 64 KiB.
        data = b"x" * 65536
        chunk = b"%x\r\n" % len(data) + data + b"\r\n"
        head = _api_head(key, b"Transfer-Encoding: chunked\r\n")
        answer, sent = _send_until_answered(server.url, head, chunk, HUGE, end=b"0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b'"error"' in answer
        # 200 MB announced by Content-Length: refused before any of it is read.
        head = _api_head(key, b"Content-Length: %d\r\n" % HUGE)
        answer, _ = _send_until_answered(server.url, head, data, HUGE)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        peak = memory_kib(pid)["VmHWM"]
        assert peak - start < 8 * 1024, (start, peak, sent)
        # The process is fine afterwards, and a body under the cap is still answered.
        assert web.post(server.url + "/api/v2/query", json=query, headers=auth, timeout=60).status_code == 200


def test_every_form_body_is_capped_too(dashboards: Server) -> None:
    # The login form is open to anyone: its body is capped like the API's.
    big = {"name": ADMIN, "password": "x" * 100_000, "csrf_token": "x"}
    r = web.post(dashboards.url + "/login", data=big, timeout=60)
    assert r.status_code == 413
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize(
    "page",
    ["1e20", "100000000000000000000", "-1", "-0", "abc", "1.5", " 1", "+1", "0x10", "１", "١", "99999999", "10000001"],
)
def test_a_bad_audit_page_number_is_a_400(admin: Admin, page: str) -> None:
    r = admin.client.get("/admin/audit", params={"page": page})
    assert r.status_code == 400, (page, r.status_code)
    assert "page number" in r.text


@pytest.mark.parametrize("page", ["", "0", "1", "007", "10000000"])
def test_good_audit_page_numbers_are_answered(admin: Admin, page: str) -> None:
    r = admin.client.get("/admin/audit", params={"page": page})
    assert r.status_code == 200, (page, r.status_code)
