"""Plausible's own tracker (npm ``@plausible-analytics/tracker``, vendored in tests/vendor) in real Chromium
against a real collector: custom events arrive with their allowlisted properties, outbound links and
downloads with the destination host and the file name only (issue 16: they used to lose their props).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from collector.siteconfig import from_dict, save
from tests.browser import TestSite, chromium
from tests.conftest import ROOT, Server, running_collector, sealed_records

pytestmark = pytest.mark.slow

TRACKER = ROOT / "tests" / "vendor" / "plausible-tracker" / "plausible.js"
TRACKER_SHA256 = "87c0a074995b8d4fb53f34b293d561d6033b7dbdefe107e9788f0b752c719b33"  # 0.4.6, see its README
SITE = "www.onecloud.example"
COLLECTOR = "collector.onecloud.example"
CONFIG = {
    "sites": [
        {
            "domain": SITE,
            "custom_events": ["Signup", "Outbound Link: Click", "File Download"],
            "prop_keys": ["plan", "url"],
            "goals": [{"event": "Signup"}, {"event": "Signup", "props": {"plan": "Pro"}, "name": "Pro signup"}],
        }
    ]
}

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>tracker</title></head><body>
<h1>Plausible's tracker</h1>
<a id="out" href="https://partner.example.org/landing/jane@example.com?ref=9f86d081884c7d65#top">partner</a>
<a id="dl" href="/files/2026/price-list.pdf?token=s3cr3t">price list</a>
<script type="module">
  // As Plausible's own tests do: a browser driven by a test tool is otherwise ignored (navigator.webdriver).
  window.__plausible = true;
  import { init, track } from "/plausible.js";
  init({
    domain: "SITE",
    endpoint: "http://COLLECTOR/api/event",
    outboundLinks: true,
    fileDownloads: true,
    customProperties: { author: "jane.doe@example.com" },  // not an allowlisted key: dropped
  });
  window.signup = (plan) => track("Signup", { props: { plan: plan, email: "jane.doe@example.com" } });
  window.trackerReady = true;
</script></body></html>""".replace("SITE", SITE).replace("COLLECTOR", COLLECTOR)


def render(path: str) -> str | None:
    if path == "/plausible.js":
        return TRACKER.read_text()
    return PAGE if path.startswith("/shop") else None


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, isp_db: Path) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("tracker") / "data"
    save(from_dict(CONFIG), data / "sites.json")
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_ALLOW_HEADLESS": "1"}
    with running_collector(data, env) as server:
        yield server


@pytest.fixture(scope="module")
def browser(collector: Server) -> Iterator[tuple[Browser, TestSite]]:
    with TestSite(render) as site, chromium({SITE: site.port, COLLECTOR: int(collector.url.rsplit(":", 1)[1])}) as b:
        yield b, site


def _wait(collector: Server, want: set[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        found = [r for r in sealed_records(collector.data_dir) if str(r["path"]).startswith("/shop")]
        if want <= {str(r["name"]) for r in found}:
            return found
        assert time.monotonic() < deadline, (want, found, collector.log())
        time.sleep(0.05)


def test_the_vendored_tracker_is_the_recorded_version() -> None:
    assert hashlib.sha256(TRACKER.read_bytes()).hexdigest() == TRACKER_SHA256


def test_custom_events_outbound_links_and_downloads_keep_their_properties(
    collector: Server, browser: tuple[Browser, TestSite]
) -> None:
    chromium_, _ = browser
    context = chromium_.new_context()
    sent: list[dict[str, Any]] = []
    context.on(
        "request",
        lambda r: sent.append(json.loads(r.post_data_buffer or b"{}")) if r.url.endswith("/api/event") else None,
    )
    page = context.new_page()
    page.goto(f"http://{SITE}/shop/pricing")
    page.wait_for_function("window.trackerReady === true")
    page.evaluate("window.signup('Pro')")
    page.evaluate("window.signup('Free')")
    # Clicks as a visitor makes them; the navigation that follows may fail (no such host here).
    page.click("#dl")
    page = context.new_page()
    page.goto(f"http://{SITE}/shop/partners")
    page.wait_for_function("window.trackerReady === true")
    page.click("#out")
    records = _wait(collector, {"pageview", "Signup", "File Download", "Outbound Link: Click"})
    context.close()

    # What the tracker sent: its own format (props under "p"), the whole link in "url".
    outbound = next(p for p in sent if p.get("n") == "Outbound Link: Click")
    assert outbound["p"]["url"].startswith("https://partner.example.org/landing/")

    signups = sorted((r["props"] for r in records if r["name"] == "Signup"), key=lambda p: p["plan"])
    assert signups == [{"plan": "Free"}, {"plan": "Pro"}]  # email and author: not allowlisted, dropped
    downloads = [r["props"] for r in records if r["name"] == "File Download"]
    assert downloads == [{"url": "price-list.pdf"}]  # the file name only
    outbounds = [r["props"] for r in records if r["name"] == "Outbound Link: Click"]
    assert outbounds == [{"url": "partner.example.org"}]  # the destination host only
    assert all(r["props"] == {} for r in records if r["name"] == "pageview")
    stored = json.dumps(records)
    for secret in ("jane", "s3cr3t", "9f86d081884c7d65", "/landing", "/files"):
        assert secret not in stored, secret
