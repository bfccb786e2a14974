"""POST /api/v2/query: Bearer keys (shown once, revocable), 400s that name the problem, audit entries."""

from __future__ import annotations

import datetime as dt
import re

import httpx

from tests import web
from tests.conftest import Server
from tests.dashboards.conftest import DEMO, Admin, csrf_token


def _query(url: str, key: str | None, body: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return web.post(url + "/api/v2/query", json=body, headers=headers, timeout=30)


def test_api_needs_a_valid_key(dashboards: Server) -> None:
    body = {"site_id": DEMO, "metrics": ["visitors"]}
    assert _query(dashboards.url, None, body).status_code == 401
    assert _query(dashboards.url, "oca_not-a-real-key", body).status_code == 401
    r = web.post(dashboards.url + "/api/v2/query", json=body, headers={"authorization": "Basic eDp5"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_api_answers_the_v2_shape_and_matches_the_breakdown(dashboards: Server, admin: Admin) -> None:
    key = admin.create_key("api-test")
    today = dt.datetime.now(dt.UTC).date()
    rng = [(today - dt.timedelta(days=6)).isoformat(), today.isoformat()]
    total = _query(dashboards.url, key, {"site_id": DEMO, "metrics": ["visitors", "pageviews"], "date_range": rng})
    assert total.status_code == 200, total.text
    answer = total.json()
    assert set(answer) == {"results", "meta", "query"}
    visitors, pageviews = answer["results"][0]["metrics"]
    assert visitors > 0 and pageviews >= visitors
    by_device = _query(
        dashboards.url,
        key,
        {"site_id": DEMO, "metrics": ["visitors"], "date_range": rng, "dimensions": ["visit:device"]},
    ).json()
    # Visitors of a visit dimension add up to the total (k-anonymity folds, it never drops visitors here).
    assert sum(r["metrics"][0] for r in by_device["results"]) == visitors
    assert all(r["metrics"][0] >= by_device["meta"]["k_anonymity"] for r in by_device["results"])
    assert "day_key" not in total.text


def test_api_errors_name_the_bad_metric_or_dimension(dashboards: Server, admin: Admin) -> None:
    key = admin.create_key()
    r = _query(dashboards.url, key, {"site_id": DEMO, "metrics": ["visitors", "day_key"]})
    assert r.status_code == 400 and "day_key" in r.json()["error"]
    r = _query(dashboards.url, key, {"site_id": DEMO, "metrics": ["visitors"], "dimensions": ["visit:ip"]})
    assert r.status_code == 400 and "visit:ip" in r.json()["error"]
    r = _query(dashboards.url, key, {"site_id": "evil.example", "metrics": ["visitors"]})
    assert r.status_code == 400 and "site_id" in r.json()["error"]
    r = web.post(dashboards.url + "/api/v2/query", content=b"{not json", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 400


def test_revoked_key_stops_working_and_calls_are_audited(dashboards: Server, admin: Admin) -> None:
    key = admin.create_key("to-revoke")
    assert _query(dashboards.url, key, {"site_id": DEMO, "metrics": ["visitors"]}).status_code == 200
    page = admin.client.get("/admin/keys").text
    assert key not in page  # shown once, never again
    # This key's row (found by the prefix it shows), and the revoke form in that row.
    row = re.search(rf"<tr>(?:(?!</tr>).)*<code>{re.escape(key[:10])}…</code>(?:(?!</tr>).)*</tr>", page, re.S)
    assert row, page
    form = re.search(r'action="/admin/keys/(\d+)/revoke"', row.group(0))
    assert form, row.group(0)
    r = admin.client.post(f"/admin/keys/{form.group(1)}/revoke", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 303
    assert _query(dashboards.url, key, {"site_id": DEMO, "metrics": ["visitors"]}).status_code == 401
    audit = admin.client.get("/admin/audit", params={"action": "api_query"}).text
    assert "api-key:to-revoke#" in audit and DEMO in audit
    assert "apikey_revoke" in admin.client.get("/admin/audit").text
