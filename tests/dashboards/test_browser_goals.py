"""Issue 16's browser test: Plausible's own tracker in real Chromium, through a real collector and the real
ingest, to the Goals panel and the properties breakdown of a real dashboards process, read in Chromium too.

Three visitors (three browser contexts with three Chrome user agents, so three
day keys from one loopback address) use the npm tracker (0.4.6, vendored in
tests/vendor/plausible-tracker): A signs up for "Pro" twice and follows the
outbound link, B signs up for "Pro" once, C for "Free" and follows the link.
K = 1 (``ANALYTICS_K_ANONYMITY``) so that rows of one or two people are shown:
the test is about the numbers reaching the panels, k-anonymity has its own
tests (tests/dashboards/test_goals.py runs the same panels at K = 5).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from aggregator.ingest import Ingester
from aggregator.settings import Settings as AggregatorSettings
from collector.siteconfig import from_dict, save
from dashboards.store import Store
from dashboards.users import Users
from tests.browser import TestSite, chromium
from tests.conftest import ROOT, Server, running_collector, sealed_records
from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, running_dashboards

pytestmark = pytest.mark.slow

TRACKER = ROOT / "tests" / "vendor" / "plausible-tracker" / "plausible.js"
SITE = "www.onecloud.example"
COLLECTOR = "collector.onecloud.example"
DASHBOARDS = "analytics.onecloud.example"
OUTBOUND = "Outbound Link: Click"
CONFIG = {
    "sites": [
        {
            "domain": SITE,
            "custom_events": ["Signup", OUTBOUND],
            "prop_keys": ["plan", "url"],
            "goals": [{"event": "Signup"}, {"event": OUTBOUND}],
        }
    ]
}
SENT = {"pageview": 3, "Signup": 4, OUTBOUND: 2}  # by the three visits below
AGENTS = [
    f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
    for v in (131, 130, 129)
]
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body>
<a id="out" href="https://partner.example.org/landing?ref=9f86d081884c7d65">partner</a>
<script type="module">
  window.__plausible = true;  // a browser driven by a test tool is otherwise ignored (navigator.webdriver)
  import { init, track } from "/plausible.js";
  init({ domain: "SITE", endpoint: "http://COLLECTOR/api/event", outboundLinks: true });
  window.signup = (plan) => track("Signup", { props: { plan: plan } });
  window.trackerReady = true;
</script></body></html>""".replace("SITE", SITE).replace("COLLECTOR", COLLECTOR)


def render(path: str) -> str | None:
    if path == "/plausible.js":
        return TRACKER.read_text()
    return PAGE if path.startswith("/shop") else None


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("trackergoals") / "data"
    save(from_dict(CONFIG), data / "sites.json")
    Users(Store(data / "dashboards.sqlite3")).add(ADMIN, ADMIN_PASSWORD, "admin")
    return data


def _wait_for(data: Path, names: dict[str, int]) -> None:
    """Until every event name has arrived in the spool as often as sent (a positive signal, bounded)."""
    deadline = time.monotonic() + 20
    while True:
        found = sealed_records(data)
        counts = {n: sum(1 for r in found if r["name"] == n) for n in names}
        if counts == names:
            return
        assert time.monotonic() < deadline, (counts, names)
        time.sleep(0.05)


def _visit(browser: Browser, agent: str, plans: list[str], outbound: bool, data: Path, so_far: dict[str, int]) -> None:
    """One visitor's page, signups and click; the context closes only once the collector has all of them
    (``so_far``: the counts by then), since closing it cancels a request still in flight."""
    context = browser.new_context(user_agent=agent)
    page = context.new_page()
    page.goto(f"http://{SITE}/shop/pricing")
    page.wait_for_function("window.trackerReady === true")
    for plan in plans:
        page.evaluate("plan => window.signup(plan)", plan)
    if outbound:
        with page.expect_request(lambda r: r.url.endswith("/api/event") and OUTBOUND in (r.post_data or "")):
            page.click("#out")  # the navigation that follows fails (no such host here): not our concern
    _wait_for(data, so_far)
    context.close()


def _cells(page: Page, panel: str) -> dict[str, dict[str, str]]:
    rows = page.eval_on_selector_all(
        f"#panel-{panel} tbody tr",
        """trs => trs.map(tr => [tr.querySelector('td.label').textContent.trim(),
              Object.fromEntries([...tr.querySelectorAll('td[data-metric]')]
                .map(td => [td.dataset.metric, td.dataset.value]))])""",
    )
    return {label: values for label, values in rows}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium({}) as b:
        yield b


@pytest.mark.slow
def test_a_tracker_event_with_props_and_an_outbound_click_reach_the_goals_and_props_panels(
    data: Path, isp_db: Path, tmp_path: Path
) -> None:
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_ALLOW_HEADLESS": "1"}
    with running_collector(data, env) as collector, TestSite(render) as site:
        port = int(collector.url.rsplit(":", 1)[1])
        with chromium({SITE: site.port, COLLECTOR: port}) as b:
            _visit(b, AGENTS[0], ["Pro", "Pro"], True, data, {"pageview": 1, "Signup": 2, OUTBOUND: 1})
            _visit(b, AGENTS[1], ["Pro"], False, data, {"pageview": 2, "Signup": 3, OUTBOUND: 1})
            _visit(b, AGENTS[2], ["Free"], True, data, SENT)
    # Read again once the browser and the collector are gone: a page that closes sends one more engagement
    # event, which may land after the last visit's wait.
    records = sealed_records(data)
    assert Counter(r["name"] for r in records if r["name"] != "engagement") == SENT
    # Three visitors. (An engagement event sent as a page closes may leave with Chromium's own user agent, so
    # another day key: engagement events alone make no visitor.)
    assert len({r["day_key"] for r in records if r["name"] != "engagement"}) == 3
    report = Ingester(AggregatorSettings(data_dir=data, duckdb_threads=2)).run_once()
    assert report.events == len(records) and report.quarantined == 0

    dash_env = {"ANALYTICS_K_ANONYMITY": "1", "ANALYTICS_ROLLUP_MAX_STALE": "0"}
    server: Server
    with running_dashboards(data, dash_env) as server, chromium({DASHBOARDS: int(server.url.rsplit(":", 1)[1])}) as b:
        page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
        today = dt.datetime.now(dt.UTC).date()
        # Yesterday to today: the visits were a moment ago, on one side of midnight or the other.
        view = f"period=custom&from={today - dt.timedelta(days=1)}&to={today}"
        page.goto(f"http://{DASHBOARDS}/sites/{SITE}?{view}")
        page.fill("#name", ADMIN)
        page.fill("#password", ADMIN_PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_selector("#panel-goals")
        # Signup: 3 unique, 4 in all, 3 of 3 visitors; the outbound link: 2 of 3 (Plausible's rounding).
        assert _cells(page, "goals") == {
            "Signup": {"visitors": "3", "events": "4", "conversion_rate": "100.0"},
            OUTBOUND: {"visitors": "2", "events": "2", "conversion_rate": "66.67"},
        }
        # The outbound link's destination is the property "url": its host only.
        page.select_option("#tab_props", "url")
        page.click(".keypicker button[type=submit]")
        page.wait_for_url("**tab_props=url**")
        assert _cells(page, "props")["partner.example.org"] == {"visitors": "2", "events": "2"}
        # A click on the goal filters the overview: the KPIs are its conversions, the properties its events.
        page.click("#panel-goals a[title='Filter by Signup']")
        page.wait_for_url("**goal=Signup**")
        kpis = page.eval_on_selector_all(
            ".kpi", "ls => ls.map(l => [l.dataset.metric, l.querySelector('.kpivalue').dataset.value])"
        )
        assert dict(kpis) == {"visitors": "3", "events": "4", "conversion_rate": "100.0"}
        page.select_option("#tab_props", "plan")
        page.click(".keypicker button[type=submit]")
        page.wait_for_url("**tab_props=plan**")
        assert _cells(page, "props") == {
            "Pro": {"visitors": "2", "events": "3", "conversion_rate": "66.67"},
            "Free": {"visitors": "1", "events": "1", "conversion_rate": "33.33"},
        }
        (ROOT / "test-output").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "test-output" / "goals-tracker.png"), full_page=True)
    stored = json.dumps(records)
    assert "9f86d081884c7d65" not in stored and "/landing" not in stored  # the link's query and path: never kept
