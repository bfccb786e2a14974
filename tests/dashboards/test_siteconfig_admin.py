"""The site configuration page: admins change sites, events, keys, goals and funnels; each change is one
audited, validated, atomic save that a running collector picks up without a restart."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from collector.siteconfig import DEMO_SITE, load
from tests import web
from tests.conftest import CHROME_UA, running_collector
from tests.dashboards.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    audit_rows,
    csrf_token,
    login,
    running_dashboards,
    users_only,
)

SITE = "shop.onecloud.example"
_REVISION = re.compile(r'name="revision" value="([^"]*)"')


def _form(client: httpx.Client, **fields: str) -> httpx.Response:
    page = client.get("/admin/siteconfig")
    assert page.status_code == 200, page.text[:300]
    found = _REVISION.search(page.text)
    assert found
    data = {"csrf_token": csrf_token(page.text), "revision": found.group(1), **fields}
    return client.post("/admin/siteconfig", data=data)


@pytest.mark.slow
def test_admins_change_the_configuration_and_a_collector_follows(tmp_path: Path, isp_db: Path) -> None:
    data = users_only(tmp_path / "data")
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITE_CONFIG_INTERVAL": "0.2", "ANALYTICS_SITES": DEMO_SITE}
    with (
        running_collector(data, env) as collector,
        running_dashboards(data) as dash,
        login(dash.url, ADMIN, ADMIN_PASSWORD) as c,
    ):
        page = c.get("/admin/siteconfig")
        assert DEMO_SITE in page.text and "Visit /order/thanks" in page.text  # the demo site's goals
        before = max((r[0] for r in audit_rows(data)), default=0)

        assert _form(c, action="add_site", site=SITE).status_code == 303
        r = _form(c, action="lists", site=SITE, custom_events="Signup\nAdd to cart", prop_keys="plan\ncart")
        assert r.status_code == 303
        assert _form(c, action="add_goal", site=SITE, kind="page", page="/checkout/*/done").status_code == 303
        r = _form(c, action="add_goal", site=SITE, kind="event", event="Signup", prop_key="plan", prop_value="Pro",
                  name="Pro signup")  # fmt: skip
        assert r.status_code == 303
        r = _form(c, action="add_funnel", site=SITE, funnel="Buy", step0="Visit /checkout/*/done", step1="Pro signup")
        assert r.status_code == 303

        site = load(data / "sites.json").site(SITE)
        assert site is not None
        assert site.custom_events == ("Signup", "Add to cart") and site.prop_keys == ("plan", "cart")
        assert [g.name for g in site.goals] == ["Visit /checkout/*/done", "Pro signup"]
        assert site.goal("Pro signup") is not None and site.goal("Pro signup").props == {"plan": "Pro"}
        assert [(f.name, f.steps) for f in site.funnels] == [("Buy", ("Visit /checkout/*/done", "Pro signup"))]

        # Every change is audited, with what changed and the revision it made.
        changes = [r for r in audit_rows(data, before) if r[2] == "siteconfig_change"]
        assert [r[1] for r in changes] == [ADMIN] * 5
        details = [r[3] or "" for r in changes]
        assert details[0].startswith("site added") and "funnel added: Buy" in details[-1]
        assert all("revision " in d for d in details)

        # The running collector accepts the new site's event within seconds: no restart.
        body = {"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": {"plan": "Pro", "x": "y"}}
        deadline = time.monotonic() + 30
        while True:
            r = web.post(collector.url + "/api/event", json=body, headers={"User-Agent": CHROME_UA}, timeout=10)
            if "x-drop-reason" not in r.headers:
                break
            assert time.monotonic() < deadline, collector.log()
            time.sleep(0.1)


@pytest.mark.slow
def test_bad_changes_say_why_and_write_nothing(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    with running_dashboards(data) as dash, login(dash.url, ADMIN, ADMIN_PASSWORD) as c:
        assert _form(c, action="add_site", site=SITE).status_code == 303
        saved = (data / "sites.json").read_bytes()
        for fields, message in [
            ({"action": "add_site", "site": "not a domain"}, "not a host name"),
            ({"action": "add_site", "site": SITE}, "configured already"),
            ({"action": "add_goal", "site": SITE, "kind": "page", "page": "no-slash"}, "starts with"),
            ({"action": "add_goal", "site": SITE, "kind": "event", "event": "pageview"}, "built in"),
            ({"action": "add_funnel", "site": SITE, "funnel": "F", "step0": "nope", "step1": "nah"}, "not a goal"),
            ({"action": "lists", "site": SITE, "custom_events": "A\nA"}, "appears twice"),
            ({"action": "remove_site", "site": SITE, "confirm": "wrong"}, "confirm"),
            ({"action": "explode", "site": SITE}, "unknown change"),
            ({"action": "add_goal", "site": "gone.example", "kind": "page", "page": "/"}, "no site"),
        ]:
            r = _form(c, **fields)
            assert r.status_code == 400 and message in r.text, (fields, r.status_code, r.text[-2000:])
        assert (data / "sites.json").read_bytes() == saved
        # A goal a funnel uses cannot go before the funnel.
        _form(c, action="add_goal", site=SITE, kind="page", page="/a")
        _form(c, action="add_goal", site=SITE, kind="page", page="/b")
        assert (
            _form(c, action="add_funnel", site=SITE, funnel="AB", step0="Visit /a", step1="Visit /b").status_code == 303
        )
        r = _form(c, action="remove_goal", site=SITE, goal="Visit /a")
        assert r.status_code == 400 and "step of the funnel" in r.text
        assert _form(c, action="remove_funnel", site=SITE, funnel="AB").status_code == 303
        assert _form(c, action="remove_goal", site=SITE, goal="Visit /a").status_code == 303
        assert _form(c, action="remove_site", site=SITE, confirm=SITE).status_code == 303
        assert load(data / "sites.json").site(SITE) is None


@pytest.mark.slow
def test_an_edit_from_a_stale_page_is_refused(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    with running_dashboards(data) as dash, login(dash.url, ADMIN, ADMIN_PASSWORD) as c:
        stale = c.get("/admin/siteconfig").text
        assert _form(c, action="add_site", site=SITE).status_code == 303
        found = _REVISION.search(stale)
        assert found
        r = c.post(
            "/admin/siteconfig",
            data={
                "csrf_token": csrf_token(stale),
                "revision": found.group(1),
                "action": "add_site",
                "site": "b.example",
            },
        )
        assert r.status_code == 409 and "Nothing was saved" in r.text
        assert load(data / "sites.json").site("b.example") is None


@pytest.mark.slow
def test_viewers_cannot_and_a_managed_file_is_read_only(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    with running_dashboards(data) as dash:
        with login(dash.url, VIEWER, VIEWER_PASSWORD) as viewer:
            assert viewer.get("/admin/siteconfig").status_code == 403
    with (
        running_dashboards(data, {"ANALYTICS_SITE_CONFIG_READONLY": "1"}) as dash,
        login(dash.url, ADMIN, ADMIN_PASSWORD) as c,
    ):
        page = c.get("/admin/siteconfig")
        assert page.status_code == 200 and "configuration management owns this file" in page.text.lower()
        assert "Add a site" not in page.text
        assert _form(c, action="add_site", site=SITE).status_code == 403
        assert not (data / "sites.json").exists()
