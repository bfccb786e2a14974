"""What the collector serves to browsers: the beacon script (caching, gzip, size budget),
the opt-out page and the transparency page, against a real collector process."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collector.app import create_app
from collector.pages import Asset, accepts_gzip, render_privacy
from collector.settings import Settings
from tests.asgi import client_of_app
from tests.conftest import CHROME_UA, ROOT, sealed_records

BUDGET = 1024
STATIC = ROOT / "collector" / "static"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, isp_db: Path) -> Iterator[Page]:
    """One collector app for the module, in this process (nothing here writes events)."""
    data_dir = tmp_path_factory.mktemp("pages") / "data"
    settings = Settings(
        data_dir=data_dir,
        isp_db=isp_db,
        sites=("www.onecloud.example", "demo.onecloud.example"),
        trusted_proxies=("127.0.0.1/32",),
    )
    with client_of_app(create_app(settings)) as client:
        yield Page(client, data_dir)


@dataclass
class Page:
    http: httpx.Client
    data_dir: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.get(path, headers=headers)


def _raw_get(collector: Page, path: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent on the wire (not decompressed)."""
    with collector.http.stream("GET", path, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def test_script_fits_the_size_budget_as_served(collector: Page) -> None:
    r, wire = _raw_get(collector, "/js/script.js", {"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert len(wire) <= BUDGET, f"beacon is {len(wire)} bytes gzip-compressed, budget {BUDGET}"
    assert gzip.decompress(wire) == (STATIC / "script.js").read_bytes()


def test_script_headers_cache_and_version(collector: Page) -> None:
    body = (STATIC / "script.js").read_bytes()
    version = hashlib.sha256(body).hexdigest()[:16]
    r = collector.get("/js/script.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.content == body
    assert "content-encoding" not in r.headers
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=86400"
    assert r.headers["etag"] == f'"{version}"'
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "accept-encoding" in r.headers["vary"].lower()

    again = collector.get("/js/script.js", headers={"If-None-Match": f'"{version}"'})
    assert again.status_code == 304 and again.content == b""

    pinned = collector.get(f"/js/script.js?v={version}")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = collector.get("/js/script.js?v=0000")
    assert stale.headers["cache-control"] == "public, max-age=86400"


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("")


def test_readable_source_is_kept_next_to_the_build() -> None:
    src = (STATIC / "script.src.js").read_text()
    built = Asset.load("script.js", "text/javascript")
    assert "sendBeacon" in src and b"sendBeacon" in built.body
    for name in ("onecloud_ignore", "engagement", "pageview", "Outbound Link: Click", "File Download"):
        assert name in src and name.encode() in built.body


def _csp(r: httpx.Response) -> dict[str, str]:
    parts = [p.strip().split(" ", 1) for p in r.headers["content-security-policy"].split(";")]
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def test_privacy_page_shows_the_live_record_and_stores_nothing(collector: Page) -> None:
    r = collector.get("/privacy", headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "8.8.8.8"})
    assert r.status_code == 200
    html = r.text
    assert "Google (AS15169)" in html
    assert "Chrome 131" in html and "Windows 10" in html and "desktop" in html
    assert "once per day" in html or "one visitor per day" in html
    assert "90 days" in html and "25 months" in html
    assert "IP address" in html
    assert "8.8.8.8" not in html  # the address itself is not echoed back
    assert 'href="/opt-out"' in html
    csp = _csp(r)
    assert csp["default-src"] == "'none'" and "script-src" not in csp
    assert csp["frame-ancestors"] == "'none'" and csp["style-src"].startswith("'sha256-")
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers
    # Nothing external is loaded; the one outside address is the licence's required credit link.
    outside = html.replace('<a href="https://db-ip.com">', "")
    assert "<script" not in html and "http://" not in outside and "https://" not in outside
    assert sealed_records(collector.data_dir) == []


def test_privacy_page_names_gpc_and_bots(collector: Page) -> None:
    r = collector.get("/privacy", headers={"User-Agent": "curl/8.0", "Sec-GPC": "1"})
    assert "Global Privacy Control" in r.text and "automated client" in r.text
    assert "(none): not in our network database" in r.text  # 127.0.0.1 has no ISP


def test_privacy_page_escapes_what_the_visitor_controls() -> None:
    evil = '<script>alert("x")</script>'
    html = render_privacy(Settings(), {"Browser": evil, "Operating system": "a&b"}, gpc=False, bot=False)
    assert evil not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and "a&amp;b" in html


def test_opt_out_page(collector: Page) -> None:
    r = collector.get("/opt-out", headers={"Referer": "http://www.onecloud.example:8080/about"})
    assert r.status_code == 200
    html = r.text
    assert 'id="opt-out"' in html and 'id="opt-in"' in html
    assert 'href="/privacy"' in html
    # The referring page is that site: its own scheme and port are kept in the link.
    assert 'href="http://www.onecloud.example:8080/#onecloud_ignore=true"' in html
    assert 'href="http://www.onecloud.example:8080/#onecloud_ignore=false"' in html
    # Other configured sites get their https address.
    assert 'href="https://demo.onecloud.example/#onecloud_ignore=true"' in html
    csp = _csp(r)
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'"
    assert '<script src="/js/opt-out.js"></script>' in html
    js = collector.get("/js/opt-out.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "onecloud_ignore" in js.text


def test_opt_out_page_ignores_foreign_referers(collector: Page) -> None:
    r = collector.get("/opt-out", headers={"Referer": "https://evil.example/www.onecloud.example"})
    assert "evil.example" not in r.text
    assert 'href="https://www.onecloud.example/#onecloud_ignore=true"' in r.text


def test_privacy_page_credits_the_isp_data(collector: Page) -> None:
    # CC BY 4.0: a page that shows ISP names credits DB-IP, RouteViews and NRO, linking db-ip.com.
    html = collector.get("/privacy", headers={"User-Agent": CHROME_UA}).text
    assert "ISP data: DB-IP.com, RouteViews, NRO (CC BY 4.0)" in html
    assert 'href="https://db-ip.com"' in html


def test_privacy_page_reads_the_client_hints_like_the_pipeline(collector: Page) -> None:
    # Chrome's reduced Android UA cannot tell a tablet from a phone; its hint can.
    ua = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    hints = {"Sec-CH-UA-Platform": '"Android"', "Sec-CH-UA-Mobile": "?1"}
    html = collector.get("/privacy", headers={"User-Agent": ua, **hints}).text
    assert "<th>Device</th><td>mobile</td>" in html
    assert "<th>Device</th><td>tablet</td>" in collector.get("/privacy", headers={"User-Agent": ua}).text
