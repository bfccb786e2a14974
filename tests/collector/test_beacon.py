"""The beacon in a real browser: Chromium visits a test site whose pages embed the
collector's /js/script.js; assertions are on what the real collector process stored.

One browser, one collector and one test site for the module; each test uses its own
path prefix, so it reads only its own records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from tests import web
from tests.browser import TestSite, chromium
from tests.conftest import ROOT, Server, running_collector, sealed_records, wait_for_records

pytestmark = pytest.mark.slow

SITE = "www.onecloud.example"
COLLECTOR = "collector.onecloud.example"
SITE_URL = f"http://{SITE}"
COLLECTOR_URL = f"http://{COLLECTOR}"
SHOTS = ROOT / "test-output"
OPT_OUT_KEY = "onecloud_ignore"


def _script(attrs: str = "", defer: bool = True) -> str:
    d = " defer" if defer else ""
    return f'<script{d} data-domain="{SITE}" src="{COLLECTOR_URL}/js/script.js"{attrs}></script>'


def render(path: str) -> str | None:
    """The test site's pages, chosen by the first path segment."""
    head, body, attrs = "", "", ""
    if path.startswith("/nodefer"):
        head = _script(defer=False)  # in <head>, before <body> exists
    elif path.startswith("/spa"):
        body = "<script>window.go = (p) => history.pushState({}, '', p);</script>"
    elif path.startswith("/hash"):
        attrs = " data-hash"
    elif path.startswith("/links"):
        attrs = " data-outbound data-downloads"
        body = (
            '<a id="out" href="https://elsewhere.example/page?secret=s3cr3t" onclick="return false">out</a> '
            '<a id="dl" href="/files/report.pdf?k=s3cr3t" onclick="return false">pdf</a> '
            '<a id="in" href="/links/other" onclick="return false">internal</a> '
            '<a id="mail" href="mailto:someone@example.org" onclick="return false">mail</a>'
        )
    elif path.startswith("/local"):
        attrs = " data-allow-local"
    elif path.startswith("/info"):
        body = f'<a id="optout" href="{COLLECTOR_URL}/opt-out">opt out of statistics</a>'
    if not head:
        body += _script(attrs)
    # Tall pages, so scroll depth means something.
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{path[:40]}</title>{head}</head>"
        f"<body><h1>Test page</h1>{body}<div style='height:3000px'></div></body></html>"
    )


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, isp_db: Path) -> Iterator[Server]:
    env = {
        "ANALYTICS_ISP_DB": str(isp_db),
        "ANALYTICS_SITES": SITE,
        "ANALYTICS_ALLOW_HEADLESS": "1",
    }
    with running_collector(tmp_path_factory.mktemp("beacon") / "data", env) as server:
        yield server


@pytest.fixture(scope="module")
def site() -> Iterator[TestSite]:
    with TestSite(render) as s:
        yield s


@pytest.fixture(scope="module")
def browser(collector: Server, site: TestSite) -> Iterator[Browser]:
    collector_port = int(collector.url.rsplit(":", 1)[1])
    with chromium({SITE: site.port, COLLECTOR: collector_port}) as b:
        yield b


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    errors: list[str] = []
    ctx.on("weberror", lambda e: errors.append(str(e.error)))
    yield ctx
    ctx.close()
    assert errors == [], "the beacon must never throw into the page"


class Beacons:
    """Every request the page sent to the collector's event endpoint, with its body."""

    def __init__(self, target: Page | BrowserContext) -> None:
        self.bodies: list[bytes] = []
        self.requests: list[Request] = []
        target.on("request", self._on)

    def _on(self, request: Request) -> None:
        if request.url.startswith(COLLECTOR_URL + "/api/event"):
            self.requests.append(request)
            self.bodies.append(request.post_data_buffer or b"")

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.bodies]


def records(collector: Server, prefix: str) -> list[dict[str, Any]]:
    return [r for r in sealed_records(collector.data_dir) if str(r["path"]).startswith(prefix)]


def wait_records(
    collector: Server, prefix: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
) -> list[dict[str, Any]]:
    """The records under ``prefix`` once ``done`` holds; fails (showing what it found) on the deadline."""
    return wait_for_records(collector.data_dir, done, lambda r: str(r["path"]).startswith(prefix), timeout)


def names(recs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(r["name"]), str(r["path"])) for r in recs]


def test_pageview_with_path_and_referrer_source(collector: Server, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{SITE_URL}/t1/pricing", referer="https://www.google.com/search?q=onecloud")
    recs = wait_records(collector, "/t1/", lambda r: len(r) >= 1)
    assert names(recs) == [("pageview", "/t1/pricing")]
    rec = recs[0]
    assert rec["site"] == SITE
    assert rec["referrer_source"] == "Google" and rec["referrer_host"] == "google.com"
    assert rec["channel"] == "Organic Search"
    assert rec["browser"] == "Chrome" and rec["device"] == "desktop"


def test_engaged_time_of_a_visible_page(collector: Server, context: BrowserContext) -> None:
    page = context.new_page()
    started = time.monotonic()
    page.goto(f"{SITE_URL}/t2/first")
    page.wait_for_timeout(3000)
    page.goto(f"{SITE_URL}/t2/second")
    # At most the whole time the first page could have been open (a loaded machine stretches the loads).
    most = (time.monotonic() - started) * 1000 + 100
    recs = wait_records(collector, "/t2/", lambda r: any(x["name"] == "engagement" for x in r))
    engaged = [r for r in recs if r["name"] == "engagement"]
    assert [r["path"] for r in engaged] == ["/t2/first"]
    assert 2500 <= int(engaged[0]["engaged_ms"]) <= max(3500, most)
    assert engaged[0]["scroll_depth"] is not None and 0 < int(engaged[0]["scroll_depth"]) < 100


@pytest.mark.slow
def test_time_in_a_background_tab_is_not_counted(collector: Server, browser: Browser) -> None:
    # The default context: real tabs in one window, no focus emulation (see tests/browser.py).
    ctx = browser.contexts[0]
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.bring_to_front()
    page.goto(f"{SITE_URL}/t3/article")
    assert page.evaluate("document.visibilityState") == "visible"
    # The page's own clock marks when it was hidden, shown and left (kept in sessionStorage across the
    # navigation): the bounds below are what the page itself saw, however long a loaded machine takes to
    # switch tabs, not the waits we asked for.
    page.evaluate("""() => {
        const mark = (what) => {
            const marks = JSON.parse(sessionStorage.getItem("t3") || "[]");
            marks.push([what, Date.now()]);
            sessionStorage.setItem("t3", JSON.stringify(marks));
        };
        document.addEventListener("visibilitychange", () => mark(document.visibilityState));
        addEventListener("pagehide", () => mark("pagehide"));
    }""")
    start = float(page.evaluate("performance.timeOrigin"))  # the beacon starts counting after this
    page.wait_for_timeout(1000)  # 1 s visible
    other = ctx.new_page()  # a new foreground tab: the article is hidden now
    assert page.evaluate("document.visibilityState") == "hidden"
    page.wait_for_timeout(3000)  # 3 s hidden: must not count
    page.bring_to_front()
    assert page.evaluate("document.visibilityState") == "visible"
    page.wait_for_timeout(3600)  # 3.6 s visible again (a report needs 3 s more)
    page.goto(f"{SITE_URL}/t3/next")
    marks = json.loads(page.evaluate("sessionStorage.getItem('t3')"))
    other.close()
    recs = wait_records(collector, "/t3/", lambda r: sum(x["name"] == "engagement" for x in r) >= 2)
    engaged = [int(r["engaged_ms"]) for r in recs if r["name"] == "engagement" and r["path"] == "/t3/article"]
    # Sent when the tab was hidden (the first report), then on leaving (3 s more).
    assert len(engaged) == 2, recs
    assert [what for what, _ in marks[:2]] == ["hidden", "visible"], marks
    hidden, shown, left = marks[0][1], marks[1][1], marks[-1][1]
    assert shown - hidden >= 3000, marks
    slack = 250  # timer granularity of the beacon's clock and of ours
    assert 700 <= engaged[0] <= hidden - start + slack, (engaged, marks, start)
    # Were the hidden 3 s counted, one of the two would be over its visible time by 3 s.
    assert 3000 <= engaged[1] <= left - shown + slack, (engaged, marks)


def test_spa_navigations(collector: Server, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{SITE_URL}/spa/home")
    page.wait_for_timeout(500)
    page.evaluate("history.replaceState({}, '', '/spa/home?tab=2')")  # same path: no page view
    page.evaluate("go('/spa/a')")
    page.wait_for_timeout(1500)
    page.evaluate("go('/spa/b')")
    page.wait_for_timeout(300)
    page.goto(f"{SITE_URL}/t4/done")
    recs = wait_records(collector, "/spa/", lambda r: sum(x["name"] == "engagement" for x in r) >= 3)
    assert [p for n, p in names(recs) if n == "pageview"] == ["/spa/home", "/spa/a", "/spa/b"]
    engaged = {str(r["path"]): int(r["engaged_ms"]) for r in recs if r["name"] == "engagement"}
    assert set(engaged) == {"/spa/home", "/spa/a", "/spa/b"}
    assert 300 <= engaged["/spa/home"] <= 1200
    assert 1200 <= engaged["/spa/a"] <= 2300
    assert engaged["/spa/b"] <= 900


def test_hash_routing(collector: Server, context: BrowserContext) -> None:
    page = context.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/hash/#/t4h/one")
    page.wait_for_timeout(300)
    page.evaluate("location.hash = '#/t4h/two'")
    recs = wait_records(collector, "/t4h/", lambda r: len(r) >= 3)
    assert names(recs) == [("pageview", "/t4h/one"), ("engagement", "/t4h/one"), ("pageview", "/t4h/two")]
    assert all(p["h"] == 1 for p in beacons.payloads())


def test_opt_out_flag_sends_nothing(collector: Server, context: BrowserContext) -> None:
    page = context.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/t5/a#{OPT_OUT_KEY}=true")
    page.goto(f"{SITE_URL}/t5/b")
    page.wait_for_timeout(500)
    assert page.evaluate(f"localStorage.getItem('{OPT_OUT_KEY}')") == "true"
    page.goto(f"{SITE_URL}/t5/c#{OPT_OUT_KEY}=false")  # opting back in
    # /t5/c's pageview is the positive signal: a beacon of /t5/a or /t5/b would have been sent, and stored,
    # before it (and Playwright saw every request the pages sent, checked below).
    recs = wait_records(collector, "/t5/", lambda r: any(x["path"] == "/t5/c" for x in r))
    assert names(recs) == [("pageview", "/t5/c")]
    assert [p["u"] for p in beacons.payloads()] == [f"{SITE_URL}/t5/c#{OPT_OUT_KEY}=false"]
    assert page.evaluate(f"localStorage.getItem('{OPT_OUT_KEY}')") is None


def test_global_privacy_control_sends_nothing(collector: Server, browser: Browser) -> None:
    ctx = browser.new_context()
    # Chromium has no GPC setting: define the property as a browser that sends GPC does.
    ctx.add_init_script("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})")
    page = ctx.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/t5g/a")
    page.wait_for_timeout(300)
    page.goto(f"{SITE_URL}/t5g/b")
    page.wait_for_timeout(500)
    ctx.close()
    assert beacons.bodies == []
    assert records(collector, "/t5g/") == []


def test_sec_gpc_header_is_dropped_by_the_collector(collector: Server, browser: Browser) -> None:
    # A browser that sends `Sec-GPC: 1` but does not expose the property: the collector drops it.
    # (No page is left before the checks: a beacon sent while a page unloads can go out
    # without Playwright's extra header, as the first version of this test found.)
    ctx = browser.new_context(extra_http_headers={"Sec-GPC": "1"})
    page = ctx.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/t5h/a")
    page.evaluate("history.pushState({}, '', '/t5h/b')")
    page.wait_for_timeout(500)
    assert [p["n"] for p in beacons.payloads()] == ["pageview", "engagement", "pageview"]  # sent ...
    assert all(r.headers.get("sec-gpc") == "1" for r in beacons.requests)
    assert records(collector, "/t5h/") == []  # ... and nothing was stored
    ctx.close()
    r = web.post(
        collector.url + "/api/event",
        content=json.dumps({"n": "pageview", "u": f"{SITE_URL}/t5h/c", "d": SITE, "r": None}),
        headers={"Content-Type": "text/plain", "Sec-GPC": "1"},
    )
    assert r.status_code == 202 and r.headers["x-drop-reason"] == "opt_out"
    assert records(collector, "/t5h/c") == []


def test_opt_out_page_flow_and_screenshots(collector: Server, context: BrowserContext) -> None:
    SHOTS.mkdir(exist_ok=True)
    page = context.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/info/privacy")
    page.click("#optout")
    page.wait_for_url(f"{COLLECTOR_URL}/opt-out")
    # The page's own buttons: the flag on the collector's origin.
    page.click("#opt-out")
    assert page.evaluate(f"localStorage.getItem('{OPT_OUT_KEY}')") == "true"
    assert "Opted out" in page.inner_text("#status")
    page.click("#opt-in")
    assert page.evaluate(f"localStorage.getItem('{OPT_OUT_KEY}')") is None
    page.click("#opt-out")
    page.screenshot(path=str(SHOTS / "opt-out.png"), full_page=True)
    # The per-site link carries the choice to the site's own origin (storage is per origin).
    link = page.locator(f'a[href="{SITE_URL}/#{OPT_OUT_KEY}=true"]')
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"{SITE_URL}/#{OPT_OUT_KEY}=true")
    assert page.evaluate(f"localStorage.getItem('{OPT_OUT_KEY}')") == "true"
    page.goto(f"{SITE_URL}/t5o/after")
    page.wait_for_timeout(500)
    assert records(collector, "/t5o/") == []
    assert [p["u"] for p in beacons.payloads()] == [f"{SITE_URL}/info/privacy"]
    page.goto(f"{COLLECTOR_URL}/privacy")
    assert "Chrome" in page.inner_text("#record")
    page.screenshot(path=str(SHOTS / "privacy.png"), full_page=True)


def test_browser_holds_nothing_but_the_opt_out_flag(collector: Server, browser: Browser) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{SITE_URL}/t6/a")
    page.wait_for_timeout(300)
    page.goto(f"{SITE_URL}/t6/b")
    page.goto(f"{COLLECTOR_URL}/privacy")
    page.goto(f"{COLLECTOR_URL}/opt-out")
    page.goto(f"{SITE_URL}/t6/c")
    wait_records(collector, "/t6/", lambda r: len(r) >= 4)
    state = ctx.storage_state(indexed_db=True)
    assert state["cookies"] == []
    assert [o for o in state["origins"] if o.get("localStorage") or o.get("indexedDB")] == []
    assert page.evaluate("sessionStorage.length") == 0
    # After opting out, the flag is the one entry.
    page.goto(f"{SITE_URL}/t6/d#{OPT_OUT_KEY}=true")
    state = ctx.storage_state(indexed_db=True)
    assert state["cookies"] == []
    stored = [(o["origin"], o.get("localStorage")) for o in state["origins"]]
    assert stored == [(SITE_URL, [{"name": OPT_OUT_KEY, "value": "true"}])]
    assert page.evaluate("sessionStorage.length") == 0
    ctx.close()


def test_query_and_fragment_never_stored(collector: Server, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{SITE_URL}/t7/page?email=a@b.c#token")
    recs = wait_records(collector, "/t7/", lambda r: len(r) >= 1)
    assert names(recs) == [("pageview", "/t7/page")]
    raw = json.dumps(recs)
    assert "a@b.c" not in raw and "token" not in raw and "email" not in raw


def test_payloads_match_plausible_events_api(collector: Server, context: BrowserContext) -> None:
    """Plausible's tracker sends compact JSON with short keys: n, u, d, r (string or null),
    then e and sd for engagement (integers), and h=1 in hash mode, as text/plain."""
    page = context.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/links/page?q=1", referer=f"{SITE_URL}/from")
    page.click("#out")
    page.click("#dl")
    page.click("#in")
    page.click("#mail")
    # An SPA navigation reports engagement while the page lives (requests sent during
    # unload are not reported to Playwright, though they reach the collector).
    page.evaluate("history.pushState({}, '', '/links/two')")
    page.wait_for_timeout(300)
    bodies = beacons.bodies
    payloads = beacons.payloads()
    for raw, p in zip(bodies, payloads, strict=True):
        # Byte for byte what JSON.stringify of the documented object gives: compact, in order.
        assert raw == json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode()
    for req in beacons.requests:
        assert req.method == "POST"
        assert req.headers["content-type"].split(";")[0] == "text/plain"
    u = f"{SITE_URL}/links/page?q=1"
    assert payloads[0] == {"n": "pageview", "u": u, "d": SITE, "r": f"{SITE_URL}/from"}
    assert list(payloads[1]) == ["n", "u", "d", "r"]
    assert payloads[1] == {"n": "Outbound Link: Click", "u": u, "d": SITE, "r": f"{SITE_URL}/from"}
    assert payloads[2] == {"n": "File Download", "u": u, "d": SITE, "r": f"{SITE_URL}/from"}
    eng = payloads[3]
    assert list(eng) == ["n", "u", "d", "r", "e", "sd"]
    assert eng["n"] == "engagement" and eng["u"] == u
    assert isinstance(eng["e"], int) and isinstance(eng["sd"], int) and 0 <= eng["sd"] <= 100
    assert payloads[4] == {"n": "pageview", "u": f"{SITE_URL}/links/two", "d": SITE, "r": f"{SITE_URL}/from"}
    assert len(payloads) == 5  # no event for the internal link or the mailto: link
    assert "s3cr3t" not in b"".join(bodies).decode()  # links' URLs are never sent
    stored = wait_records(collector, "/links/", lambda r: len(r) >= 5)
    assert names(stored) == [
        ("pageview", "/links/page"),
        ("Outbound Link: Click", "/links/page"),
        ("File Download", "/links/page"),
        ("engagement", "/links/page"),
        ("pageview", "/links/two"),
    ]


def test_fetch_keepalive_fallback_and_no_defer(collector: Server, browser: Browser) -> None:
    ctx = browser.new_context()
    # A full beacon queue makes sendBeacon return false: the script falls back to fetch.
    ctx.add_init_script("navigator.sendBeacon = () => false")
    page = ctx.new_page()
    beacons = Beacons(page)
    page.goto(f"{SITE_URL}/nodefer/t9")
    recs = wait_records(collector, "/nodefer/", lambda r: len(r) >= 1)
    ctx.close()
    assert names(recs) == [("pageview", "/nodefer/t9")]
    assert beacons.requests and beacons.requests[0].resource_type == "fetch"


def test_localhost_is_ignored_unless_allowed(collector: Server, site: TestSite, context: BrowserContext) -> None:
    page = context.new_page()
    beacons = Beacons(page)
    page.goto(f"http://127.0.0.1:{site.port}/t10/a")
    page.wait_for_timeout(500)
    assert beacons.bodies == []
    page.goto(f"http://127.0.0.1:{site.port}/local/t10")
    page.wait_for_timeout(500)
    assert len(beacons.bodies) == 1  # sent; this collector (no ANALYTICS_ALLOW_LOCALHOST) drops it
    assert records(collector, "/local/") == []


def test_page_errors_stay_the_pages_own(context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{SITE_URL}/spa/t11")
    # The wrapped pushState still throws the browser's own error for a cross-origin URL.
    err = page.evaluate(
        "() => { try { history.pushState({}, '', 'https://elsewhere.example/'); return null }"
        " catch (e) { return e.name } }"
    )
    assert err == "SecurityError"
    assert page.evaluate("location.pathname") == "/spa/t11"
