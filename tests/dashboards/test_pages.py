"""Pages, CSV export and the audit log through a real dashboards process; headers; no day keys anywhere."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

from aggregator.query import Querier
from aggregator.settings import Settings as AggregatorSettings
from tests import web
from tests.conftest import Server
from tests.dashboards.conftest import DEMO, VIEWER, VIEWER_PASSWORD, XSS_SITE, Admin, base_env, csrf_token, login, run

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)


def test_security_headers_on_pages_static_and_api(dashboards: Server) -> None:
    for path in ("/login", "/static/app.css", "/sites"):
        r = web.get(dashboards.url + path)
        assert r.headers["content-security-policy"].startswith(CSP), path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert web.get(dashboards.url + "/login").headers["cache-control"] == "no-store"
    assert web.post(dashboards.url + "/api/v2/query").headers["referrer-policy"] == "no-referrer"


def test_overview_shows_kpis_chart_panels_and_about(admin: Admin) -> None:
    html = admin.client.get(f"/sites/{DEMO}", params={"period": "7d"}).text
    for label in (
        "Visitors",
        "Visits",
        "Pageviews",
        "Views per visit",
        "Bounce rate",
        "Visit duration",
        "Time on page",
    ):
        assert f'<span class="kpilabel">{label}</span>' in html
    assert (
        '<svg class="chart chart-wide"' in html and '<svg class="chart chart-compact"' in html and "<polyline" in html
    )
    for panel in ("pages", "sources", "browsers", "os", "devices", "isps"):
        assert f'id="panel-{panel}"' in html
    assert "About this data" in html and "returning visitor on another day counts again" in html
    assert 'href="https://db-ip.com"' in html and "ISP data: DB-IP.com, RouteViews, NRO (CC BY 4.0)" in html
    assert "visitors in the last 5 minutes" in html and "last ingest" in html
    # No inline script or style (the CSP would block both): only the one same-origin script.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/dashboard.js" defer>'] and "style=" not in html


def test_realtime_is_the_last_five_minutes_k_anonymous(admin: Admin, seeded: Path) -> None:
    # The page's number against the query API on the same lake, read before and after the page: nothing is
    # ingested meanwhile, so it can only fall as events age out of the window.
    settings = AggregatorSettings(data_dir=seeded)
    for site in (DEMO, XSS_SITE):
        before = Querier(settings).current_visitors(site, dt.datetime.now(dt.UTC))
        html = admin.client.get(f"/sites/{site}").text
        after = Querier(settings).current_visitors(site, dt.datetime.now(dt.UTC))
        shown = re.search(r'<strong id="realtime-value">([^<]*)</strong>', html)
        assert shown is not None
        value = shown.group(1)
        if value == "&lt;5":
            assert after.visitors is None
        else:
            assert before.visitors is not None and (after.visitors or 0) <= int(value) <= before.visitors
        assert before.newest is not None
        # The newest event's minute is shown only with the number (under K, not even when the last one came).
        assert (f"newest event {before.newest:%H:%M} UTC" in html) == (value != "&lt;5")


def test_a_row_link_adds_a_filter_chip_and_it_can_be_removed(admin: Admin) -> None:
    html = admin.client.get(f"/sites/{DEMO}", params={"period": "7d"}).text
    link = re.search(r'href="(\?[^"]*browser=Chrome[^"]*)"', html)
    assert link, "no Chrome row"
    filtered = admin.client.get(f"/sites/{DEMO}" + link.group(1).replace("&amp;", "&")).text
    assert 'class="chip"' in filtered and '<span class="chipval">Chrome</span>' in filtered
    remove = re.search(r'class="chipx" href="([^"]*)"', filtered)
    assert remove and "browser=" not in remove.group(1)


def test_csv_export_matches_the_panel_and_is_formula_safe(admin: Admin) -> None:
    today = dt.datetime.now(dt.UTC).date()
    view = {
        "period": "custom",
        "from": str(today - dt.timedelta(days=1)),
        "to": str(today),
        "tab_sources": "utm_source",
    }
    page = admin.client.get(f"/sites/{XSS_SITE}", params=view).text
    r = admin.client.get(f"/sites/{XSS_SITE}/export/sources.csv", params=view)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["UTM source", "visitors", "visits", "bounce_rate"]
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert '\'=HYPERLINK("http://evil.example","x")' in [row[0] for row in rows]
    assert "'-2+3" in [row[0] for row in rows] and "'@SUM(1+1)" in [row[0] for row in rows]
    panel = page.split('id="panel-sources"')[1].split("</section>")[0]
    shown = [int(v) for v in re.findall(r'data-metric="visitors" data-value="(\d+)"', panel)]
    named = [int(row[1]) for row in rows[1:] if row[0] != "(other)"]
    other = [int(row[1]) for row in rows[1:] if row[0] == "(other)"]
    # The top ten, then the query layer's exact (other) row, as in the CSV and the nightly report.
    assert len(named) > 10 and shown == named[:10] + other


def test_views_and_exports_are_in_the_audit_log(admin: Admin, dashboards: Server) -> None:
    with login(dashboards.url, VIEWER, VIEWER_PASSWORD) as viewer:
        assert viewer.get(f"/sites/{DEMO}", params={"period": "30d"}).status_code == 200
        assert viewer.get(f"/sites/{DEMO}/export/devices.csv", params={"period": "30d"}).status_code == 200
    html = admin.client.get("/admin/audit", params={"actor": VIEWER}).text
    rows = re.findall(r"<tr><td>[^<]+</td><td>viewer</td><td>(\w+)</td><td>([^<]*)</td><td>([^<]*)</td>", html)
    assert ("export", DEMO, "devices/device") in rows
    assert ("view", DEMO, "overview") in rows
    assert ("login", "", "") in rows


def test_unknown_site_and_panel_are_404(admin: Admin) -> None:
    assert admin.client.get("/sites/not-allowlisted.example").status_code == 404
    assert admin.client.get(f"/sites/{DEMO}/export/day_keys.csv").status_code == 404


def test_no_page_or_export_shows_day_keys(admin: Admin) -> None:
    for path in (f"/sites/{DEMO}", f"/sites/{DEMO}/export/pages.csv", "/admin/sites", "/sites"):
        text = admin.client.get(path).text
        assert "day_key" not in text and "day key" not in text.replace("a key whose daily salt", "")


def test_admin_adds_a_user_who_can_log_in_then_disables_them(admin: Admin, dashboards: Server) -> None:
    token = csrf_token(admin.client.get("/admin/users").text)
    r = admin.client.post("/admin/users", data={"name": "carol", "role": "viewer", "password": "", "csrf_token": token})
    shown = re.search(r'id="new-password">([^<]+)<', r.text)
    assert r.status_code == 200 and shown
    with login(dashboards.url, "carol", shown.group(1)) as carol:
        assert carol.get("/sites").status_code == 200
        assert shown.group(1) not in admin.client.get("/admin/users").text  # shown once
        r = admin.client.post("/admin/users/carol", data={"action": "disable", "csrf_token": token})
        assert r.status_code == 303
        assert carol.get("/sites").status_code == 303
    r = admin.client.post("/admin/users/admin", data={"action": "disable", "csrf_token": token})
    assert r.status_code == 400 and "cannot disable or demote yourself" in r.text
    log = admin.client.get("/admin/audit").text
    assert "user_add" in log and "user_disable" in log


def test_cli_prints_a_generated_password_once(seeded: Path) -> None:
    out = run(["-m", "dashboards", "users", "add", "dave"], base_env(seeded))
    assert out.startswith("added viewer dave\npassword: ") and len(out.split("password: ")[1].strip()) >= 16
