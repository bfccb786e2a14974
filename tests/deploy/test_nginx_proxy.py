"""A real nginx (Debian's) with the shipped site config in front of a real collector.

The client address must come from X-Forwarded-For only when nginx is a trusted
proxy, and a client-written X-Forwarded-For must never win. The stored event
has no address, so the test tells them apart by ISP: a test database maps the
client's loopback address and nginx's to different AS numbers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import web
from tests.conftest import CHROME_UA, ROOT, free_port, running_collector, sealed_records

SITE = "www.onecloud.example"
CLIENT_IP = "127.0.0.5"  # the visitor, as nginx sees it
CLIENT_AS, PROXY_AS, SPOOF_AS = 64500, 64501, 13335


def _isp_db(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for cidr, asn, org in [
        (f"{CLIENT_IP}/32", CLIENT_AS, "Client Net"),
        ("127.0.0.1/32", PROXY_AS, "Proxy Net"),
        ("1.1.1.0/24", SPOOF_AS, "Cloudflare, Inc."),
    ]:
        w.insert_network(IPSet([cidr]), {"autonomous_system_number": asn, "autonomous_system_organization": org})
    w.to_db_file(str(path))
    return path


def _render_site(tmp: Path, port: int, upstream_port: int) -> Path:
    """The shipped config, moved to test ports and paths; everything else as shipped."""
    conf = (ROOT / "deploy" / "nginx" / "onecloud-analytics.conf").read_text()
    collector_server = conf.split("server {")[1]  # the collector's TLS server block
    conf = conf.split("server {")[0] + "server {" + collector_server.rsplit("}", 1)[0] + "}\n"
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl;")
    conf = re.sub(r"\n\s*listen \[::\]:443 ssl http2;", "", conf)
    conf = conf.replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
    conf = conf.replace("/etc/ssl/onecloud/analytics.crt", str(tmp / "cert.pem"))
    conf = conf.replace("/etc/ssl/onecloud/analytics.key", str(tmp / "key.pem"))
    conf = conf.replace("/var/log/nginx/", str(tmp) + "/")
    conf = conf.replace("server 127.0.0.1:8001;", "server 127.0.0.1:9;")
    site = tmp / "site.conf"
    site.write_text(conf)
    return site


def _render_dashboards_site(tmp: Path, port: int, upstream_port: int) -> Path:
    """The shipped dashboards server block, moved to test ports and paths, loopback added to its allowlist."""
    conf = (ROOT / "deploy" / "nginx" / "onecloud-analytics.conf").read_text()
    upstreams, blocks = conf.split("server {")[0], conf.split("server {")[1:]
    (block,) = [b for b in blocks if "server_name dashboards." in b]
    conf = upstreams + "server {" + block.rsplit("}", 1)[0] + "}\n"
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl;")
    conf = re.sub(r"\n\s*listen \[::\]:443 ssl http2;", "", conf)
    conf = conf.replace("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstream_port};")
    conf = conf.replace("server 127.0.0.1:8000;", "server 127.0.0.1:9;")
    conf = conf.replace("/etc/ssl/onecloud/dashboards.crt", str(tmp / "cert.pem"))
    conf = conf.replace("/etc/ssl/onecloud/dashboards.key", str(tmp / "key.pem"))
    conf = conf.replace("/var/log/nginx/", str(tmp) + "/")
    assert "deny all;" in conf
    conf = conf.replace("deny all;", "allow 127.0.0.0/8;\n    deny all;")  # the test client is on loopback
    site = tmp / "site.conf"
    site.write_text(conf)
    return site


@pytest.fixture
def nginx_for(tmp_path: Path) -> Iterator[object]:
    if not shutil.which("nginx"):
        pytest.fail("nginx is not installed (make test installs it from .system-deps)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(upstream_port: int, render: object = _render_site) -> str:
        tmp = tmp_path / f"nginx-{upstream_port}"
        tmp.mkdir()
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                f"/CN={SITE}",
                "-keyout",
                str(tmp / "key.pem"),
                "-out",
                str(tmp / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )
        port = free_port()
        site = render(tmp, port, upstream_port)  # type: ignore[operator]
        temp_paths = "\n".join(
            f"{d}_temp_path {tmp}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (tmp / "nginx.conf").write_text(
            f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/main-error.log warn;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n{temp_paths}\ninclude {site};\n}}\n"
        )
        subprocess.run(["nginx", "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], check=True, capture_output=True)
        proc = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
        procs.append(proc)
        url = f"https://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(url + "/healthz", verify=False, timeout=1)
                return url
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def _send_through(url: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=CLIENT_IP, verify=False)
    with httpx.Client(transport=transport, base_url=url, headers={"Host": SITE}) as c:
        body = json.dumps({"n": "pageview", "u": f"https://{SITE}/", "d": SITE}).encode()
        # The client tries to choose its own address: this must never be believed.
        return c.post(
            "/api/event",
            content=body,
            headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA, "X-Forwarded-For": "1.1.1.1"},
        )


@pytest.mark.parametrize(("trusted", "expected_asn"), [("127.0.0.1/32", CLIENT_AS), ("", PROXY_AS)])
def test_client_address_from_proxy_only_when_trusted(
    tmp_path: Path,
    nginx_for,
    trusted: str,  # type: ignore[no-untyped-def]
    expected_asn: int,
) -> None:
    env = {
        "ANALYTICS_ISP_DB": str(_isp_db(tmp_path / "asn.mmdb")),
        "ANALYTICS_SITES": SITE,
        "ANALYTICS_TRUSTED_PROXIES": trusted,
    }
    with running_collector(tmp_path / "data", env) as collector:
        url = nginx_for(int(collector.url.rsplit(":", 1)[1]))
        r = _send_through(url)
        assert r.status_code == 202, r.text
    records = sealed_records(tmp_path / "data")
    assert [rec["asn"] for rec in records] == [expected_asn]


def test_nginx_writes_no_client_address(tmp_path: Path, nginx_for) -> None:  # type: ignore[no-untyped-def]
    env = {
        "ANALYTICS_SITES": SITE,
        "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
        "ANALYTICS_ISP_DB": str(_isp_db(tmp_path / "asn.mmdb")),
    }
    with running_collector(tmp_path / "data", env) as collector:
        url = nginx_for(int(collector.url.rsplit(":", 1)[1]))
        assert _send_through(url).status_code == 202
        # An error path too: nginx logs per-request errors with the client's address.
        with httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT_IP, verify=False)) as c:
            c.post(url + "/api/event", content=b"x" * 40000, headers={"Host": SITE, "Content-Type": "text/plain"})
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.suffix in (".log", ".jsonl", ""):
            assert CLIENT_IP.encode() not in f.read_bytes(), f


def test_dashboards_cookies_are_secure_through_the_shipped_tls_site(tmp_path: Path, nginx_for) -> None:  # type: ignore[no-untyped-def]
    """Reached through the shipped TLS config, the session cookie is Secure with no setting (issue 13)."""
    from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, csrf_token, running_dashboards, users_only

    data = users_only(tmp_path / "data")
    # Nothing about TLS or proxies configured: the default must already get it right.
    with running_dashboards(data) as dashboards:
        url = nginx_for(int(dashboards.url.rsplit(":", 1)[1]), _render_dashboards_site)
        with httpx.Client(base_url=url, verify=False, headers={"Host": "dashboards.onecloud.example"}) as c:
            form = c.get("/login")
            assert form.status_code == 200
            r = c.post("/login", data={"name": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": csrf_token(form.text)})
            assert r.status_code == 303, r.text[:300]
            cookies = [v for k, v in [*form.headers.multi_items(), *r.headers.multi_items()] if k == "set-cookie"]
            session = [v for v in cookies if v.startswith("oc_session=")]
            assert session and all("; Secure" in v for v in cookies), cookies
            assert c.get("/sites").status_code == 200  # and the browser-like client sends it back over TLS
        # The same process straight over plain HTTP (as `make run` serves it): not Secure, so logins work.
        with web.client(base_url=dashboards.url) as c:
            assert "Secure" not in c.get("/login").headers["set-cookie"]
