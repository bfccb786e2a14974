"""PRIVACY.md rule 1, end to end: identifiers planted through a real collector are in no file the product writes.

Identifiers of every class (tests/privacy/needles.py), in several encodings,
go through a real ``python -m collector serve`` in the page path, the referrer
host and path, every UTM field, the User-Agent, an allowlisted custom event
name and its custom properties (a path, a URL, a key not allowlisted), from
known client addresses with known User-Agents, cookies and fragments. Then
the real ``aggregator ingest --follow`` (which also builds today's rollups),
``aggregator nightly`` and a logged-in ``dashboards serve`` whose every panel
is exported as CSV. Every file under the test's directory —
spool, lake and rollup Parquet (also read back as values), reports, the
dashboards SQLite, every process's captured output and the exports — is then
searched, percent-decoded three times and NFKC-normalised, for each planted
identifier and its pieces, the client addresses in every form, and the UAs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq

from dashboards.panels import PANELS
from tests import web
from tests.conftest import ROOT, running_collector, sealed_records
from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, base_env, login, running_dashboards
from tests.privacy import needles
from tests.privacy.needles import Planted, read_as_attacker
from tests.privacy.planted import fullwidth, percent_encode

SITE = "www.onecloud.example"  # one of tests.dashboards.conftest's SITES
IPS = ["8.8.8.8", "1.1.1.1", "81.2.69.160", "2001:4860:4860::8888", "2a00:1450:4001:82a::200e", "198.51.100.77"]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 "
    "Safari/537.36 UniqueMarkerAlpha",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1 UniqueMarkerBeta",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 UniqueMarkerGamma",
]
SECRETS = ["fragmentsecret", "cookievalue123", "querysecret77"]

# (identifier, how it is encoded in URLs): every class, several spellings and encodings.
PLANTED: list[tuple[Planted, str]] = [
    (needles.email("jane.doe", "example.com"), "plain"),
    (needles.email("max+tag", "mail.example.org"), "pct2"),
    (needles.email("jane", "intranet"), "pct3"),
    (needles.email("erika", "firma.example", "＠"), "fullwidth"),
    (needles.email("ops", "corp.example", " (at) "), "controls"),
    (needles.ip("203.0.113.77"), "plain"),
    (needles.ip("198.18.7.9", "198-18-7-9"), "pct1"),
    (needles.ip("2001:db8::8a2e:370:7334"), "pct2"),
    (needles.ip("fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a%eth0"), "controls"),
    (needles.ip("::ffff:192.0.2.44"), "fullwidth"),
    (needles.phone("+1-415-555-0100"), "plain"),
    (needles.phone("+44 20 7946 0958"), "pct3"),
    (needles.phone("(415) 555-0199"), "controls"),
    (needles.uuid_(uuid.UUID("550e8400-e29b-41d4-a716-446655440000"), "550e8400-e29b-41d4-a716-446655440000"), "pct1"),
    (needles.digit_run("4155551234"), "controls"),
    (needles.token("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"), "plain"),
    (needles.token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "pct1"),
    (needles.token("sk_live_51HqLyjWDarjtT1zdp7dcXkHg"), "fullwidth"),
    (needles.b64_of(needles.email("a", "b.c")), "plain"),
    (needles.b64_of(needles.phone("+14155550100"), urlsafe=True, padded=False), "pct2"),
    (needles.b64_of(needles.ip("10.20.30.40")), "controls"),
]


def encode(text: str, how: str) -> str:
    if how == "fullwidth":
        return fullwidth(text, [True, False])
    if how == "controls":
        return percent_encode("\x00".join(text[i : i + 3] for i in range(0, len(text), 3)) + "\x1b\x07\n", 1, True)
    return percent_encode(text, int(how[3:]) if how.startswith("pct") else 0, mixed_case=True)


def _host(planted: Planted) -> str:
    if planted.kind == "ip":
        text = planted.text.replace("%", "%25")
        return f"[{text}]" if ":" in text else text
    return quote(planted.text, safe="")


def _requests() -> list[tuple[dict[str, object], dict[str, str]]]:
    out: list[tuple[dict[str, object], dict[str, str]]] = []
    for i, (planted, how) in enumerate(PLANTED):
        value = encode(planted.text, how)
        in_path = value.replace("/", "%2F")
        query = "&".join(
            f"utm_{k}={quote(value, safe='%')}" for k in ("source", "medium", "campaign", "content", "term")
        )
        headers = {
            "X-Forwarded-For": IPS[i % len(IPS)],
            "User-Agent": UAS[i % len(UAS)],
            "Cookie": "session=cookievalue123",
            "Content-Type": "text/plain",
        }
        page = f"https://{SITE}/a/{in_path}/b?{query}&t=querysecret77#fragmentsecret"
        body: dict[str, object] = {"n": "pageview", "u": page, "d": SITE}
        out.append(({**body, "r": f"https://news.example.org/r/{in_path}?t=querysecret77#fragmentsecret"}, headers))
        out.append(({**body, "n": "engagement", "e": 4200, "sd": 55}, headers))
        if not planted.kind.startswith("b64("):  # a known limit: see test_no_identifier_in_event.py
            out.append(({**body, "r": f"https://{_host(planted)}/x"}, headers))
        props = {"path": f"/a/{in_path}/b?t=querysecret77#fragmentsecret", "url": page, "email": value}
        out.append(({"n": f"Signup {value}", "u": f"https://{SITE}/e", "d": SITE, "p": props}, headers))
        # The identifier as the UA's product token (HTTP headers are ASCII).
        if planted.text.isascii():
            ua = f"{planted.text}/1.0 CFNetwork/1490.0.4 Darwin/23.2.0"
            out.append(({**body, "u": f"https://{SITE}/ua"}, {**headers, "User-Agent": ua}))
    return out


def _run(args: list[str], env: dict[str, str], out: Path, stdin: str | None = None) -> None:
    """A real ``python -m ...`` whose stdout and stderr are kept, to be scanned like every other file."""
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    (out / f"{args[0]}-{args[1]}.stdout").write_text(proc.stdout)
    (out / f"{args[0]}-{args[1]}.stderr").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr


def _ingest_and_roll_up_today(env: dict[str, str], data: Path, out: Path, day: dt.date) -> None:
    """``aggregator ingest --follow`` ingests, then builds today's rollups; stopped once they exist."""
    with open(out / "aggregator-ingest.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "ingest", "--follow"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rollups = data / "lake" / "rollups"
            deadline = time.monotonic() + 120
            while not list(rollups.glob(f"site=*/day={day.isoformat()}/*.parquet")):
                assert proc.poll() is None and time.monotonic() < deadline, (out / "aggregator-ingest.log").read_text()
                time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def _ip_needles() -> list[bytes]:
    out: list[bytes] = []
    for ip in IPS:
        addr = ipaddress.ip_address(ip)
        out += [f.encode() for f in {ip, str(addr), addr.exploded}] + [addr.packed]
        if addr.version == 4:
            out.append(f"::ffff:{ip}".encode())
    return out


def _readable(path: Path) -> str:
    """A file as text an attacker would read: its bytes, and a Parquet file's values too."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".parquet":
        text += "\n" + json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
    return text


def test_no_planted_identifier_reaches_any_file(tmp_path: Path, isp_db: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    collector_env = {
        "ANALYTICS_ISP_DB": str(isp_db),
        "ANALYTICS_SITES": SITE,
        "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
        "ANALYTICS_LOG_LEVEL": "debug",
        "ANALYTICS_CUSTOM_EVENTS": ",".join(f"Signup {p.text}" for p, _ in PLANTED),
    }
    requests = _requests()
    stored = 0
    with running_collector(data, collector_env) as server, web.client(base_url=server.url) as client:
        for body, headers in requests:
            r = client.post("/api/event", content=json.dumps(body).encode(), headers=headers)
            # An identifier as the UA's product token may make it a bot (an e-mail address in a
            # UA is a crawler's contact): dropped, it is stored nowhere either.
            allowed = (None, "bot") if body["u"] == f"https://{SITE}/ua" else (None,)
            assert r.status_code == 202 and r.headers.get("x-drop-reason") in allowed, (body, r.headers)
            stored += "x-drop-reason" not in r.headers
        for body, headers in requests[:4]:  # error paths must not leak either
            assert (
                client.post("/api/event", content=b"{" + json.dumps(body).encode(), headers=headers).status_code == 400
            )
        server.kill(signal.SIGTERM)
    records = sealed_records(data)
    assert len(records) == stored and stored >= len(requests) - 4
    placeholders = {":email", ":ip", ":phone", ":uuid", ":id", ":token"}
    assert {r["path"] for r in records} <= {f"/a/{p}/b" for p in placeholders} | {"/e", "/ua"}
    assert {r["name"] for r in records if r["path"] == "/e"} <= placeholders
    props = [r["props"] for r in records if r["path"] == "/e"]
    assert props and all(set(p) == {"path", "url"} for p in props)  # "email" is no allowlisted key
    day = dt.datetime.fromtimestamp(int(str(records[0]["ts"])), dt.UTC).date()

    env = {**base_env(data), "ANALYTICS_K_ANONYMITY": "1"}  # every planted row is shown: the strictest case
    _ingest_and_roll_up_today(env, data, out, day)
    _run(["aggregator", "nightly", "--day", day.isoformat(), "--no-mail"], env, out)
    assert list((data / "reports").rglob("*.csv")), "the nightly wrote no report"
    _run(["dashboards", "users", "add", ADMIN, "--admin", "--password-stdin"], env, out, ADMIN_PASSWORD + "\n")
    with running_dashboards(data, {"ANALYTICS_K_ANONYMITY": "1"}) as dash, login(dash.url, ADMIN, ADMIN_PASSWORD) as c:
        (out / "overview.html").write_text(c.get(f"/sites/{SITE}", params={"period": "day"}).text)
        for panel in PANELS:
            for tab in panel.tabs:
                params = {"period": "day", f"tab_{panel.key}": tab.key}
                r = c.get(f"/sites/{SITE}/export/{panel.key}.csv", params=params)
                assert r.status_code == 200, r.text[:300]
                (out / f"export-{panel.key}-{tab.key}.csv").write_bytes(r.content)
        pages = (out / "export-pages-page.csv").read_text()
        assert "/a/:email/b" in pages  # the export holds the planted rows, scrubbed
        dash.kill(signal.SIGTERM)

    # The site configuration holds what the operator configured (here the planted names themselves,
    # ANALYTICS_CUSTOM_EVENTS above, so that they pass the allowlist), nothing a visitor sent.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "sites.json"]
    assert any(p.suffix == ".parquet" for p in written) and any(p.name == "dashboards.sqlite3" for p in written)
    raw_needles = _ip_needles() + [ua.encode() for ua in UAS] + [b"UniqueMarker"]
    text_needles = {n for p, _ in PLANTED for n in p.needles} | set(SECRETS)
    text_needles |= {p.digits for p, _ in PLANTED if len(p.digits) >= 7}
    for path in written:
        raw, read = path.read_bytes(), read_as_attacker(_readable(path))
        name = str(path.relative_to(tmp_path))
        assert not [n for n in raw_needles if n in raw or n.decode(errors="ignore") in name], name
        found = sorted(n for n in text_needles if n in read or n in read_as_attacker(name))
        assert not found, f"{found} in {name}"
