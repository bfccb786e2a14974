"""Every page in a real browser (Debian's Chromium via Playwright) against real processes (issue 18).

Screenshots of every page at 1440 and 390 px go to ``test-output/`` and each
page is checked for horizontal overflow; the nightly report and the collector's
public pages at 360 px. The chart's comparison line and tooltips (hover and
keyboard), the filter editor (a chip edited to "is not" with a second value),
realtime refreshing itself, the copy button of a new key, a shared link opened
by a stranger, and names that wrap between words, not inside them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.nightly import run_nightly
from aggregator.settings import Settings as AggregatorSettings
from tests.browser import CHROMIUM, launched_chromium
from tests.conftest import ROOT, Server, running_collector
from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, DEMO, XSS_SITE

OUT = ROOT / "test-output"
WIDTHS = (1440, 390)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def admin_state(browser: object, dashboards: Server) -> dict[str, object]:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{dashboards.url}/login")
    page.fill("#name", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    state: dict[str, object] = context.storage_state()
    context.close()
    return state


def overflow(page: object) -> int:
    """How far the document is wider than the viewport (0: it fits)."""
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    return int(width) - int(page.viewport_size["width"])  # type: ignore[attr-defined]


def shoot(page: object, name: str, widths: tuple[int, ...] = WIDTHS) -> None:
    OUT.mkdir(exist_ok=True)
    for w in widths:
        page.set_viewport_size({"width": w, "height": 900})  # type: ignore[attr-defined]
        page.wait_for_timeout(50)  # type: ignore[attr-defined]  # one layout after the resize
        assert overflow(page) <= 0, (name, w, overflow(page))
        page.screenshot(path=str(OUT / f"{name}-{w}.png"), full_page=True)  # type: ignore[attr-defined]


def new_page(browser: object, state: dict[str, object] | None = None, **kw: object) -> object:
    context = browser.new_context(storage_state=state, viewport={"width": 1440, "height": 900}, **kw)  # type: ignore[attr-defined]
    return context.new_page()


@pytest.mark.slow
def test_every_page_fits_and_is_screenshotted(browser: object, dashboards: Server, admin_state: dict) -> None:
    today = dt.datetime.now(dt.UTC).date()
    recent = f"period=custom&from={today - dt.timedelta(days=1)}&to={today}"
    pages = {
        "sites": "/sites",
        "overview": f"/sites/{DEMO}?period=7d",
        "overview-today": f"/sites/{DEMO}?period=day",
        "overview-12mo": f"/sites/{DEMO}?period=12mo&compare=year_over_year",
        "overview-filtered": f"/sites/{DEMO}?period=7d&browser=Chrome&browser=Safari&device=desktop&tab_isps=asn",
        "overview-too-small": f"/sites/{XSS_SITE}?{recent}&browser=Chrome&os=Windows&device=desktop&isp=x",
        "overview-xss": f"/sites/{XSS_SITE}?{recent}&tab_pages=entry&tab_sources=utm_content",
        "realtime": f"/sites/{DEMO}/realtime",
        "annotations": f"/sites/{DEMO}/annotations",
        "error": f"/sites/{DEMO}?period=custom&from=2026-02-30&to=2026-03-01",
        "admin-users": "/admin/users",
        "admin-keys": "/admin/keys",
        "admin-shares": "/admin/shares",
        "admin-alerts": "/admin/alerts",
        "admin-audit": "/admin/audit?action=view",
        "admin-sites": "/admin/sites",
    }
    page = new_page(browser, admin_state)
    for name, path in pages.items():
        response = page.goto(dashboards.url + path)  # type: ignore[attr-defined]
        assert response is not None and response.status in (200, 400), (name, response.status)
        shoot(page, name)
    login = new_page(browser)
    login.goto(dashboards.url + "/login")  # type: ignore[attr-defined]
    shoot(login, "login")


def test_the_comparison_line_and_its_tooltips(browser: object, dashboards: Server, admin_state: dict) -> None:
    page = new_page(browser, admin_state)
    page.goto(f"{dashboards.url}/sites/{DEMO}?period=7d")  # type: ignore[attr-defined]
    chart = page.locator("svg.chart-wide")  # type: ignore[attr-defined]
    assert chart.locator("polyline.prevline").count() >= 1 and chart.locator("polyline.line").count() >= 1
    columns = chart.locator("rect.hit")
    assert columns.count() == 7
    # Hover anywhere in a day's column (not on a 3-px dot): the tooltip names both days and both values.
    box = columns.nth(3).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 10)  # type: ignore[attr-defined]
    tip = page.locator(".chartbox .tip").first  # type: ignore[attr-defined]
    tip.wait_for(state="visible")
    label, prev = columns.nth(3).get_attribute("data-label"), columns.nth(3).get_attribute("data-prev-label")
    assert label in tip.inner_text() and prev in tip.inner_text()
    # The keyboard: focus the chart, move with the arrow keys.
    chart.focus()
    page.keyboard.press("End")  # type: ignore[attr-defined]
    assert columns.nth(6).get_attribute("data-label") in tip.inner_text()
    page.keyboard.press("ArrowLeft")  # type: ignore[attr-defined]
    assert columns.nth(5).get_attribute("data-label") in tip.inner_text()
    # Integer ticks for counts, and on a phone the compact chart is the one shown.
    ticks = chart.locator("text.axis[text-anchor=end]").all_text_contents()
    assert ticks and all(re.fullmatch(r"[0-9]+(\.[0-9]+k|k)?", t) for t in ticks), ticks  # "1.5k" is 1500
    page.set_viewport_size({"width": 390, "height": 800})  # type: ignore[attr-defined]
    assert page.locator("svg.chart-compact").is_visible() and not chart.is_visible()  # type: ignore[attr-defined]


def test_the_filter_editor_edits_a_chip_to_is_not_with_a_second_value(
    browser: object, dashboards: Server, admin_state: dict
) -> None:
    page = new_page(browser, admin_state)
    page.goto(f"{dashboards.url}/sites/{DEMO}?period=7d")  # type: ignore[attr-defined]
    page.click("#panel-browsers td.label a:text-is('Chrome')")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    page.click(".chipedit summary")  # type: ignore[attr-defined]
    page.select_option("#op-f1", "is_not")  # type: ignore[attr-defined]
    page.fill("#v-f1-new", "Safari")  # type: ignore[attr-defined]
    page.click(".chipedit button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert "browser_op=is_not" in page.url and "browser=Chrome&browser=Safari" in page.url  # type: ignore[attr-defined]
    chip = " ".join(page.inner_text(".chipedit summary").split())  # type: ignore[attr-defined]
    assert chip.startswith("Browser is not Chrome nor Safari")
    rows = page.locator("#panel-browsers td.label").all_inner_texts()  # type: ignore[attr-defined]
    assert rows and "Chrome" not in rows and "Safari" not in rows
    # And the "add a filter" form, then removing the filter with its ×.
    page.click(".addfilter summary")  # type: ignore[attr-defined]
    page.select_option("#add", "device")  # type: ignore[attr-defined]
    page.fill("#add_value", "desktop")  # type: ignore[attr-defined]
    page.click(".addfilter button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert "device=desktop" in page.url and "add=" not in page.url  # type: ignore[attr-defined]
    page.click("a.chipx[aria-label^='Remove filter Browser']")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert "browser" not in page.url and "device=desktop" in page.url  # type: ignore[attr-defined]


def test_realtime_refreshes_itself_every_30_seconds(browser: object, dashboards: Server, admin_state: dict) -> None:
    page = new_page(browser, admin_state)
    page.clock.install()  # type: ignore[attr-defined]
    page.goto(f"{dashboards.url}/sites/{DEMO}/realtime")  # type: ignore[attr-defined]
    assert page.locator("[data-refresh-link]").is_hidden()  # type: ignore[attr-defined]
    assert page.locator("[data-refresh-note]").is_visible()  # type: ignore[attr-defined]
    assert page.get_attribute("#live", "data-refreshed") is None  # type: ignore[attr-defined]
    page.clock.run_for(31_000)  # type: ignore[attr-defined]
    page.wait_for_selector("#live[data-refreshed]")  # type: ignore[attr-defined]
    assert page.locator("#live #realtime-value").count() == 1  # type: ignore[attr-defined]


def test_a_new_key_has_a_copy_button(browser: object, dashboards: Server, admin_state: dict) -> None:
    page = new_page(browser, admin_state, permissions=["clipboard-read", "clipboard-write"])
    page.goto(f"{dashboards.url}/admin/keys")  # type: ignore[attr-defined]
    page.fill("#key-name", "copy-test")  # type: ignore[attr-defined]
    page.click("form[action='/admin/keys'] button[type=submit]")  # type: ignore[attr-defined]
    key = page.inner_text("#new-key").strip()  # type: ignore[attr-defined]
    page.click("button[data-copy=new-key]")  # type: ignore[attr-defined]
    page.wait_for_selector("button[data-copy=new-key]:text-is('Copied')")  # type: ignore[attr-defined]
    assert page.evaluate("navigator.clipboard.readText()") == key  # type: ignore[attr-defined]
    # The status column says active or revoked; the button is in its own column.
    row = page.locator("table.list tr", has_text="copy-test")  # type: ignore[attr-defined]
    assert row.locator("span.status").inner_text() == "active" and row.locator("button").inner_text() == "Revoke"


def test_a_shared_link_in_a_strangers_browser(browser: object, dashboards: Server, admin_state: dict) -> None:
    page = new_page(browser, admin_state)
    page.goto(f"{dashboards.url}/admin/shares")  # type: ignore[attr-defined]
    page.fill("#share-name", "browser-share")  # type: ignore[attr-defined]
    page.click("form[action='/admin/shares'] button[type=submit]")  # type: ignore[attr-defined]
    link = page.inner_text("#new-link").strip()  # type: ignore[attr-defined]
    shoot(page, "admin-shares-created")
    stranger = new_page(browser)
    stranger.goto(link + "?period=7d")  # type: ignore[attr-defined]
    assert "A read-only view shared" in stranger.inner_text("main")  # type: ignore[attr-defined]
    hrefs = stranger.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")  # type: ignore[attr-defined]
    assert not [h for h in hrefs if h.startswith(("/admin", "/sites", "/login", "/api"))], hrefs
    shoot(stranger, "shared-view")
    stranger.click("#panel-devices td.label a >> nth=0")  # type: ignore[attr-defined]
    stranger.wait_for_load_state()  # type: ignore[attr-defined]
    assert stranger.url.startswith(link) and "device=" in stranger.url  # type: ignore[attr-defined]


def test_names_wrap_between_words_not_inside_them(browser: object, dashboards: Server, admin_state: dict) -> None:
    page = new_page(browser, admin_state)
    page.set_viewport_size({"width": 390, "height": 800})  # type: ignore[attr-defined]
    page.goto(f"{dashboards.url}/sites/{DEMO}?period=7d")  # type: ignore[attr-defined]
    broken = page.evaluate(  # type: ignore[attr-defined]
        """() => {
          const out = [];
          for (const a of document.querySelectorAll('#panel-isps td.label a, #panel-isps td.label span')) {
            const text = a.firstChild; if (!text || text.nodeType !== 3) continue;
            let i = 0;
            for (const word of text.data.split(' ')) {
              const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + word.length);
              if (word.length > 1 && r.getClientRects().length > 1) out.push(word);
              i += word.length + 1;
            }
          }
          return out;
        }"""
    )
    assert broken == []


@pytest.mark.slow
def test_the_report_and_the_public_pages_fit_a_phone(
    browser: object, seeded: Path, tmp_path: Path, isp_db: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seeded, data)
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    settings = AggregatorSettings(data_dir=data, duckdb_threads=2, report_sites=(DEMO,))
    out = io.StringIO()
    assert run_nightly(settings, day, out=out, err=out, mail=False) == 0, out.getvalue()
    report = data / "reports" / DEMO / day.isoformat() / "index.html"
    page = new_page(browser)
    page.goto(report.as_uri())  # type: ignore[attr-defined]
    shoot(page, "report", (1440, 390, 360))
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": "www.onecloud.example,demo.onecloud.example"}
    with running_collector(tmp_path / "collector", env) as collector:
        for name in ("privacy", "opt-out"):
            page.goto(f"{collector.url}/{name}")  # type: ignore[attr-defined]
            shoot(page, f"collector-{name}", (1440, 390, 360))


def test_an_admin_adds_a_note_and_an_alert_rule_in_the_browser(
    browser: object, dashboards: Server, admin_state: dict, seeded: Path
) -> None:
    page = new_page(browser, admin_state)
    day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)).isoformat()
    page.goto(f"{dashboards.url}/sites/{DEMO}/annotations")  # type: ignore[attr-defined]
    page.fill("#note-day", day)  # type: ignore[attr-defined]
    page.fill("#note-text", "Browser-made note")  # type: ignore[attr-defined]
    page.click("form[action$='/annotations'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert "Browser-made note" in page.inner_text("table.list")  # type: ignore[attr-defined]
    page.goto(f"{dashboards.url}/sites/{DEMO}?period=7d")  # type: ignore[attr-defined]
    marker = page.locator("svg.chart-wide g.marker")  # type: ignore[attr-defined]
    assert marker.count() == 1 and "Browser-made note" in marker.locator("title").text_content()
    box = page.locator(f"svg.chart-wide rect.hit[data-label='{day}']").bounding_box()  # type: ignore[attr-defined]
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 20)  # type: ignore[attr-defined]
    assert "Browser-made note" in page.locator(".chartbox .tip").first.inner_text()  # type: ignore[attr-defined]
    page.goto(f"{dashboards.url}/sites/{DEMO}/annotations")  # type: ignore[attr-defined]
    page.click("table.list form button")  # type: ignore[attr-defined]  # delete it again (a shared lake)
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert "Browser-made note" not in page.inner_text("main")  # type: ignore[attr-defined]
    page.goto(f"{dashboards.url}/admin/alerts")  # type: ignore[attr-defined]
    page.select_option("#alert-kind", "below")  # type: ignore[attr-defined]
    page.fill("#alert-threshold", "20")  # type: ignore[attr-defined]
    page.fill("#alert-to", "web-team@onecloud.example")  # type: ignore[attr-defined]
    page.click("form[action='/admin/alerts'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    row = page.locator("table.list tr", has_text="web-team@onecloud.example")  # type: ignore[attr-defined]
    assert row.count() == 1 and "below" in row.inner_text() and "0 of 2" in row.inner_text()
    rules = json.loads((seeded / "alerts.json").read_text())["rules"]
    assert [(r["kind"], r["threshold"]) for r in rules] == [("below", 20)]
    row.locator("button").click()
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert json.loads((seeded / "alerts.json").read_text())["rules"] == []
