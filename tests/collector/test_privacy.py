"""PRIVACY.md rule 1: after a corpus of identifying requests, no byte of any written file holds them."""

from __future__ import annotations

import ipaddress
import json
import signal
from pathlib import Path

import httpx

from tests.conftest import running_collector, sealed_records

SITE = "www.onecloud.example"
IPS = ["8.8.8.8", "1.1.1.1", "81.2.69.160", "2001:4860:4860::8888", "2a00:1450:4001:82a::200e", "203.0.113.77"]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 "
    "Safari/537.36 UniqueMarkerAlpha",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1 UniqueMarkerBeta",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 UniqueMarkerGamma",
]
EMAILS = ["jane.doe@example.com", "max+tag@mail.example.org"]
TOKENS = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "eyJhbGciOiJIUzI1NiJ9SeCrEt42xyz", "sk_live_51HtokenABCDEF12"]
UUID = "550e8400-e29b-41d4-a716-446655440000"


def _forms_of_ip(ip: str) -> list[bytes]:
    addr = ipaddress.ip_address(ip)
    forms = {ip, str(addr), addr.exploded}
    out = [f.encode() for f in forms]
    out.append(addr.packed)  # the raw bytes, in case something wrote a binary form
    if addr.version == 4:
        out.append(f"::ffff:{ip}".encode())
    return out


def _needles() -> list[bytes]:
    needles: list[bytes] = []
    for ip in IPS:
        needles.extend(_forms_of_ip(ip))
    needles += [ua.encode() for ua in UAS] + [b"UniqueMarker"]
    needles += [e.encode() for e in EMAILS] + [e.replace("@", "%40").encode() for e in EMAILS]
    needles += [t.encode() for t in TOKENS] + [UUID.encode(), b"fragmentsecret", b"cookievalue123"]
    return needles


def _corpus() -> list[tuple[dict[str, object], dict[str, str]]]:
    out: list[tuple[dict[str, object], dict[str, str]]] = []
    for i, ip in enumerate(IPS):
        ua = UAS[i % len(UAS)]
        email, token = EMAILS[i % len(EMAILS)], TOKENS[i % len(TOKENS)]
        headers = {
            "User-Agent": ua,
            "X-Forwarded-For": ip,
            "Cookie": "session=cookievalue123",
            "Content-Type": "text/plain",
        }
        pages = [
            f"https://{SITE}/account/{email}/settings?token={token}#fragmentsecret",
            f"https://{SITE}/reset/{token}?email={email}&utm_source=newsletter",
            f"https://{SITE}/orders/{UUID}?session={token}",
            f"https://{SITE}/u/{email.replace('@', '%40')}",
        ]
        for url in pages:
            body = {
                "n": "pageview",
                "u": url,
                "d": SITE,
                "r": f"https://mail.partner.example/inbox/{email}?t={token}#fragmentsecret",
                "p": {"email": email, "token": token},
            }
            out.append((body, headers))
            out.append(({**body, "n": "engagement", "e": 4200, "sd": 55}, headers))
    return out


def test_no_identifier_reaches_any_file(tmp_path: Path, isp_db: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        "ANALYTICS_ISP_DB": str(isp_db),
        "ANALYTICS_SITES": SITE,
        "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
        "ANALYTICS_LOG_LEVEL": "debug",
    }
    corpus = _corpus()
    with running_collector(data_dir, env) as server, httpx.Client(base_url=server.url) as client:
        for body, headers in corpus:
            r = client.post("/api/event", content=json.dumps(body).encode(), headers=headers)
            assert r.status_code == 202, r.text
            assert "x-drop-reason" not in r.headers
        # Error paths must not leak either.
        for body, headers in corpus[:4]:
            client.post("/api/event", content=b"{" + json.dumps(body).encode(), headers=headers)
        server.kill(signal.SIGTERM)
        log = server.log_path.read_bytes()

    records = sealed_records(data_dir)
    assert len(records) == len(corpus)
    paths = {r["path"] for r in records}
    assert paths == {"/account/:email/settings", "/reset/:token", "/orders/:uuid", "/u/:email"}
    assert {r["asn"] for r in records} >= {15169, 13335}

    written = [p for p in data_dir.rglob("*") if p.is_file()]
    assert written, "the collector wrote nothing?"
    for needle in _needles():
        for path in written:
            assert needle not in path.read_bytes(), f"{needle!r} found in {path.relative_to(data_dir)}"
            assert needle.decode(errors="ignore") not in path.name
        assert needle not in log, f"{needle!r} found in the server log"
