"""Shared links, in process with an injected clock: made by an admin, opened by a stranger, refused when revoked
or expired, never a row under K, no admin page through them, every view audited, rate-limited."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.schema import Event
from tests.aggregator.oracle import expected, people
from tests.dashboards.conftest import DEMO, audit_rows, copy_of, csrf_token
from tests.dashboards.inproc import Clock, InProcess, client_of, log_in, running_app
from tests.dashboards.lakes import NOW, RARE_BROWSER, known_events

K = 5
WEEK = (dt.date(2026, 11, 15), dt.date(2026, 11, 21))


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return known_events()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, known_lake: Path) -> Path:
    return copy_of(known_lake, tmp_path_factory.mktemp("shares"))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(data: Path, clock: Clock) -> Iterator[InProcess]:
    with running_app(data, clock) as transport:
        yield transport


@pytest.fixture
def admin(app: InProcess) -> Iterator[httpx.Client]:
    with client_of(app) as c:
        yield log_in(c)


def make_link(admin: httpx.Client, *, password: str = "", expires: str = "", name: str = "agency") -> str:
    token = csrf_token(admin.get("/admin/shares").text)
    form = {"site": DEMO, "name": name, "password": password, "expires": expires, "csrf_token": token}
    r = admin.post("/admin/shares", data=form)
    m = re.search(r'id="new-link">http://testserver(/share/ocs_[A-Za-z0-9_-]+)<', r.text)
    assert r.status_code == 200 and m, r.text[-1000:]
    return m.group(1)


def test_a_stranger_sees_the_overview_read_only_and_every_view_is_audited(
    admin: httpx.Client, app: InProcess, data: Path, events: list[Event]
) -> None:
    path = make_link(admin)
    before = audit_rows(data)[-1][0]
    with client_of(app) as stranger:
        r = stranger.get(path, params={"period": "7d"})
        assert r.status_code == 200
        page = r.text
        truth = expected(events, DEMO, *WEEK, ("visitors",))[()]["visitors"]
        assert 'data-metric="visitors">' in page and f'data-value="{truth}"' in page
        # Read-only: no navigation, no export, no admin, no realtime or annotation pages, no logout.
        hrefs = set(re.findall(r'(?:href|action)="([^"]*)"', page))
        assert not [h for h in hrefs if h.startswith(("/admin", "/sites", "/api", "/logout", "/login"))], hrefs
        assert "Export CSV" not in page and "A read-only view shared by the site's administrators: agency" in page
        # Filters and tabs work through the link (same path), under the same rules.
        r = stranger.get(path, params=[("period", "7d"), ("browser", "Chrome"), ("tab_isps", "asn")])
        assert r.status_code == 200 and '<span class="chipval">Chrome</span>' in r.text
    rows = [(actor, action, detail) for _, actor, action, detail in audit_rows(data, before)]
    views = [d for a, act, d in rows if a.startswith("share:agency#") and act == "view"]
    assert views == ["period=7d", "period=7d&browser=Chrome&tab_isps=asn"], rows
    assert not any(path.split("/")[-1] in (d or "") for _, _, d in rows)  # the token is never logged


def test_a_link_never_shows_a_row_under_k(admin: httpx.Client, app: InProcess, events: list[Event]) -> None:
    path = make_link(admin, name="k-check")
    with client_of(app) as stranger:
        page = stranger.get(path, params={"period": "7d", "tab_browsers": "version"}).text
        assert RARE_BROWSER not in page  # K - 1 people in the lake
        checked = 0
        for panel, dims in (("browsers", ("visit:browser", "visit:browser_version")), ("devices", ("visit:device",))):
            section = page.split(f'id="panel-{panel}"')[1].split("</section>")[0]
            truth = expected(events, DEMO, *WEEK, ("visitors",), dims)
            for label, value in re.findall(r'title="Filter by ([^"]+)">.*?data-value="(\d+)"', section, re.S):
                key = tuple(html.unescape(label).split(" ")) if len(dims) > 1 else (html.unescape(label),)
                assert people(truth[key]) >= K and truth[key]["visitors"] == int(value), (label, value)
                checked += 1
        assert checked >= 5
        small = stranger.get(path, params={"period": "7d", "browser": RARE_BROWSER}).text
        assert "This segment is too small to show (fewer than 5 people)." in small and "kpivalue" not in small


def test_no_admin_page_or_export_is_reachable_through_a_link(admin: httpx.Client, app: InProcess) -> None:
    path = make_link(admin, password="a-long-share-password", name="locked")
    with client_of(app) as stranger:
        assert stranger.get(path).status_code == 401  # the password form
        token = csrf_token(stranger.get(path).text)
        r = stranger.post(path, data={"password": "a-long-share-password", "csrf_token": token})
        assert r.status_code == 303 and stranger.get(path).status_code == 200
        site = f"/sites/{DEMO}"
        for target in ("/admin/users", "/admin/shares", "/admin/audit", "/sites", site, f"{site}/export/pages.csv",
                       f"{site}/realtime", f"{site}/annotations"):  # fmt: skip
            r = stranger.get(target)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), target
        assert stranger.post("/api/v2/query", json={"site_id": DEMO, "metrics": ["visitors"]}).status_code == 401
        # The password's cookie is for this link only: another locked link asks again.
        other = make_link(admin, password="another-long-password", name="other")
        assert stranger.get(other).status_code == 401


def test_a_wrong_password_is_refused_audited_and_limited(admin: httpx.Client, app: InProcess, data: Path) -> None:
    path = make_link(admin, password="the-right-password", name="guessing")
    before = audit_rows(data)[-1][0]
    with client_of(app) as stranger:
        codes = []
        for _ in range(7):
            token = csrf_token(stranger.get(path).text)
            codes.append(stranger.post(path, data={"password": "wrong-password!", "csrf_token": token}).status_code)
        assert codes[:5] == [401] * 5 and codes[-1] == 429  # the login limits: 5 per account (link) per window
        token = csrf_token(stranger.get(path).text)
        r = stranger.post(path, data={"password": "wrong-password!"})
        assert r.status_code == 403  # no CSRF token: refused before any check
    actions = [action for _, _, action, _ in audit_rows(data, before)]
    assert actions.count("share_password_failed") == 5 and "share_password_blocked" in actions


def test_revoked_and_expired_links_are_refused(admin: httpx.Client, app: InProcess, clock: Clock, data: Path) -> None:
    revoked = make_link(admin, name="revoked")
    expiring = make_link(admin, name="expiring", expires="1")
    with client_of(app) as stranger:
        assert stranger.get(revoked).status_code == 200 and stranger.get(expiring).status_code == 200
        listing = admin.get("/admin/shares").text
        row = next(r for r in listing.split("<tr>") if r.lstrip().startswith("<td>revoked</td>"))
        revoke = re.search(r'action="(/admin/shares/\d+/revoke)"', row)
        assert revoke is not None
        assert admin.post(revoke.group(1), data={"csrf_token": csrf_token(listing)}).status_code == 303
        r = stranger.get(revoked)
        assert r.status_code == 410 and "was revoked" in r.text
        clock.at = NOW + dt.timedelta(days=1, seconds=1)
        r = stranger.get(expiring)
        assert r.status_code == 410 and "was expired" in r.text
        assert stranger.get("/share/ocs_" + "x" * 43).status_code == 404
    assert 'class="status revoked">revoked' in admin.get("/admin/shares").text
    refusals = [(actor, detail) for _, actor, action, detail in audit_rows(data) if action == "share_refused"]
    assert ("share:expiring#" in " ".join(a for a, _ in refusals)) and ("revoked" in [d for _, d in refusals])


def test_views_through_links_are_rate_limited_per_address(admin: httpx.Client, app: InProcess) -> None:
    path = make_link(admin, name="flood")
    with client_of(app) as stranger:
        # Unknown tokens count too: guessing costs the guesser (60 views a minute per address).
        codes = [stranger.get("/share/ocs_guess" + str(i)).status_code for i in range(60)]
        assert set(codes) == {404}
        r = stranger.get(path)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
