"""The dashboards in a real browser (Playwright driving Debian's Chromium) against real processes.

Seeded data went through the real `aggregator ingest`. The flows: redirect to
login, log in, KPIs equal the Stats API, a row click filters, CSV export equals
the panel, log out; a viewer meets no admin page; the audit log shows it all;
and a corpus of XSS payloads stored in every free-text field runs no script.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import web
from tests.browser import CHROMIUM, launched_chromium
from tests.conftest import ROOT, Server
from tests.dashboards.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    COLLECTOR_PAYLOADS,
    DEMO,
    VIEWER,
    VIEWER_PASSWORD,
    XSS_PAYLOADS,
    XSS_SITE,
    csrf_token,
)

OUT = ROOT / "test-output"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched_chromium() as b:
        yield b


def _guard(page: object, dialogs: list[str], hosts: set[str]) -> None:
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or r.url))  # type: ignore[attr-defined]


def _login(page: object, url: str, name: str, password: str) -> None:
    page.fill("#name", name)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_admin_flow_kpis_filter_export_audit_logout(browser: object, dashboards: Server) -> None:
    OUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    dialogs: list[str] = []
    hosts: set[str] = set()
    _guard(page, dialogs, hosts)
    overview = f"{dashboards.url}/sites/{DEMO}?period=7d"
    page.goto(overview)
    assert "/login?next=" in page.url
    _login(page, dashboards.url, ADMIN, ADMIN_PASSWORD)
    assert page.url == overview

    # KPIs on the page equal the Stats API's answer for the same range.
    kpis = {
        m: float(page.get_attribute(f".kpi[data-metric={m}] .kpivalue", "data-value"))
        for m in ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
    }
    page.goto(f"{dashboards.url}/admin/keys")
    page.fill("#key-name", "browser-test")
    page.click("form[action='/admin/keys'] button[type=submit]")
    key = page.inner_text("#new-key").strip()
    body = {"site_id": DEMO, "metrics": list(kpis), "date_range": "7d"}  # the same words mean the same days
    api = web.post(dashboards.url + "/api/v2/query", json=body, headers={"authorization": f"Bearer {key}"}).json()
    assert dict(zip(kpis, [float(v) for v in api["results"][0]["metrics"]], strict=True)) == kpis
    assert kpis["visitors"] > 0

    # Desktop and phone screenshots of the overview for a reviewer.
    page.goto(overview)
    page.screenshot(path=str(OUT / "overview-desktop.png"), full_page=True)
    phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())  # type: ignore[attr-defined]
    phone_page = phone.new_page()
    phone_page.goto(overview)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    phone_page.screenshot(path=str(OUT / "overview-phone.png"), full_page=True)
    phone.close()

    # Clicking a browser row filters the whole view by it.
    page.click("#panel-browsers td.label a:text-is('Chrome')")
    page.wait_for_load_state()
    assert "browser=Chrome" in page.url
    assert page.inner_text(".chip .chipval") == "Chrome"
    filtered = float(page.get_attribute(".kpi[data-metric=visitors] .kpivalue", "data-value"))
    assert 0 < filtered < kpis["visitors"]
    rows = page.locator("#panel-browsers tbody tr")
    assert rows.count() == 1 and rows.first.locator("td.label").inner_text() == "Chrome"
    page.click(".chip .chipx")
    page.wait_for_load_state()
    assert "browser=" not in page.url and page.locator(".chip").count() == 0

    # The CSV export has the same rows and numbers as the panel.
    cells = page.locator("#panel-devices tbody tr").all()
    visitors = "td[data-metric=visitors]"
    shown = [(r.locator("td.label").inner_text(), int(r.locator(visitors).get_attribute("data-value"))) for r in cells]
    with page.expect_download() as info:
        page.click("#panel-devices a.export")
    download = info.value
    rows_csv = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows_csv[0][:2] == ["Device", "visitors"]
    assert [(r[0], int(r[1])) for r in rows_csv[1:]] == shown

    # The audit log shows the view, the export and the API call.
    page.goto(f"{dashboards.url}/admin/audit")
    log = page.inner_text("table.audit")
    assert "export" in log and "devices/device" in log and "overview" in log and "api_query" in log

    # Logging out ends the session: the overview sends us to the login page again.
    page.click("header form[action='/logout'] button")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/login"
    page.goto(overview)
    assert "/login?next=" in page.url
    assert dialogs == [] and hosts == {"127.0.0.1"}
    context.close()


def test_viewer_sees_no_admin(browser: object, dashboards: Server) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{dashboards.url}/login")
    _login(page, dashboards.url, VIEWER, VIEWER_PASSWORD)
    assert page.locator("nav.mainnav a[href='/admin/users']").count() == 0
    # Keyboard and screen-reader basics: a skip link first, every control labelled.
    page.goto(f"{dashboards.url}/sites/{DEMO}?period=7d")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)"
    )
    assert unlabelled == []
    for path in ("/admin/users", "/admin/keys", "/admin/audit"):
        response = page.goto(dashboards.url + path)
        assert response is not None and response.status == 403
        assert "This page is for administrators." in page.inner_text("main")
    context.close()


@pytest.mark.slow
def test_stored_xss_payloads_run_no_script(browser: object, dashboards: Server) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    dialogs: list[str] = []
    hosts: set[str] = set()
    _guard(page, dialogs, hosts)
    page.goto(f"{dashboards.url}/login")
    _login(page, dashboards.url, ADMIN, ADMIN_PASSWORD)
    today = dt.datetime.now(dt.UTC).date()
    # The corpus was written an hour ago: yesterday and today cover it even just after midnight.
    base = f"{dashboards.url}/sites/{XSS_SITE}?period=custom&from={today - dt.timedelta(days=1)}&to={today}"
    # Every tab of every panel, several panels per page load.
    tabs = [
        "",
        "&tab_pages=entry&tab_sources=source&tab_browsers=version&tab_os=version&tab_isps=asn",
        "&tab_pages=exit&tab_sources=referrer",
        "&tab_sources=utm_source",
        "&tab_sources=utm_medium",
        "&tab_sources=utm_campaign",
    ]
    seen = 0
    via_collector: set[str] = set()
    for extra in tabs:
        page.goto(base + extra)
        text = page.inner_text("main")
        seen += sum(1 for p in XSS_PAYLOADS if p in text)
        via_collector.update(p for p in COLLECTOR_PAYLOADS if p in text)
        assert page.evaluate("typeof window.__xss") == "undefined", extra
    assert seen >= 10 * len(tabs)  # the payloads are shown (top 10 rows per panel), as text
    assert via_collector == set(COLLECTOR_PAYLOADS)  # and those that came through the real collector
    # Filter by a payload (a chip shows it), then look at the audit log where the query string is listed.
    page.goto(base)
    page.click(f"#panel-browsers td.label a:text-is('{XSS_PAYLOADS[1]}')")
    page.wait_for_load_state()
    assert page.inner_text(".chip .chipval") == XSS_PAYLOADS[1]
    page.focus(".chip .chipx")
    assert page.evaluate("typeof window.__xss") == "undefined"
    # Failed logins with payloads as user names: no such users, so the audit log says "(unknown user)" and
    # never stores what was typed (PRIVACY.md rule 10); the filter's query string above is listed as text.
    with web.client(base_url=dashboards.url) as c:
        for p in XSS_PAYLOADS[:4]:
            token = csrf_token(c.get("/login").text)
            assert c.post("/login", data={"name": p, "password": "x" * 12, "csrf_token": token}).status_code == 401
    page.goto(f"{dashboards.url}/admin/audit?action=login_failed")
    audit = page.inner_text("table.audit")
    assert "(unknown user)" in audit and not any(p in audit for p in XSS_PAYLOADS[:4])
    page.goto(f"{dashboards.url}/admin/audit?action=view")
    # The filter's query string, decoded into "name: value" pairs, and shown as text.
    assert f"browser: {XSS_PAYLOADS[1]}" in page.inner_text("table.audit")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == [] and hosts == {"127.0.0.1"}
    context.close()
