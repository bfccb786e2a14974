"""Login, sessions, CSRF, failed-login limits, roles and the proxy header, through a real dashboards process."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests import web
from tests.conftest import Server
from tests.dashboards.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    DEMO,
    VIEWER,
    VIEWER_PASSWORD,
    audit_rows,
    base_env,
    csrf_token,
    login,
    run,
    running_dashboards,
    users_only,
)


def test_every_page_needs_a_login(dashboards: Server) -> None:
    for path in ("/sites", f"/sites/{DEMO}", f"/sites/{DEMO}/export/browsers.csv", "/admin/users", "/admin/audit"):
        r = web.get(dashboards.url + path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next="), path
    r = web.post(dashboards.url + "/admin/users", data={"name": "x", "role": "admin"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_session_cookie_is_signed_httponly_samesite(dashboards: Server) -> None:
    with web.client(base_url=dashboards.url) as c, web.client(base_url=dashboards.url) as forged:
        _cookie_checks(c, forged)


def _cookie_checks(c: httpx.Client, forged: httpx.Client) -> None:
    token = csrf_token(c.get("/login").text)
    r = c.post("/login", data={"name": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token, "next": "/sites"})
    assert r.status_code == 303 and r.headers["location"] == "/sites"
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("oc_session="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert c.get("/sites").status_code == 200
    # A tampered cookie is not a session.
    value = c.cookies["oc_session"]
    # One character of the signature changed, five from the end: all six of its bits are the signature's.
    # (The last two were set to "xx" before. The last base64 character of a 20-byte signature carries two
    # bits the decoder ignores, so about one cookie in a thousand stayed valid: one fresh-clone run saw 200.)
    i = len(value) - 5
    forged.cookies.set("oc_session", value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :])
    assert forged.get("/sites").status_code == 303


def test_login_needs_the_csrf_token_and_a_same_site_post(dashboards: Server) -> None:
    with web.client(base_url=dashboards.url) as c:
        _login_csrf_checks(c)


def _login_csrf_checks(c: httpx.Client) -> None:
    csrf_token(c.get("/login").text)
    r = c.post("/login", data={"name": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": "wrong"})
    assert r.status_code == 403
    token = csrf_token(c.get("/login").text)
    r = c.post(
        "/login",
        data={"name": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 403
    r = c.post(
        "/login",
        data={"name": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_wrong_password_is_refused_without_saying_which_part(dashboards: Server) -> None:
    with web.client(base_url=dashboards.url) as c:
        for name, password in ((ADMIN, "not-the-password"), ("nobody", "whatever-password")):
            token = csrf_token(c.get("/login").text)
            r = c.post("/login", data={"name": name, "password": password, "csrf_token": token})
            assert r.status_code == 401
            assert "Wrong user name or password." in r.text


def test_state_changing_forms_need_the_session_csrf_token(dashboards: Server) -> None:
    with login(dashboards.url, ADMIN, ADMIN_PASSWORD) as c:
        r = c.post("/admin/users", data={"name": "mallory", "role": "admin", "csrf_token": "forged"})
        assert r.status_code == 403
        r = c.post("/admin/keys", data={"name": "k"})
        assert r.status_code == 403
        r = c.post("/logout", data={})
        assert r.status_code == 403
        assert "mallory" not in c.get("/admin/users").text


def test_logout_kills_the_session_server_side(dashboards: Server) -> None:
    with login(dashboards.url, VIEWER, VIEWER_PASSWORD) as c:
        stolen = c.cookies["oc_session"]
        token = csrf_token(c.get("/sites").text)
        assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    with web.client(base_url=dashboards.url, cookies={"oc_session": stolen}) as replay:
        assert replay.get("/sites").status_code == 303


def test_viewer_cannot_reach_admin_pages(dashboards: Server) -> None:
    with login(dashboards.url, VIEWER, VIEWER_PASSWORD) as c:
        assert 'href="/admin/users"' not in c.get("/sites").text
        for path in ("/admin/users", "/admin/keys", "/admin/audit", "/admin/sites"):
            assert c.get(path).status_code == 403, path
        token = csrf_token(c.get("/sites").text)
        r = c.post("/admin/users", data={"name": "mallory", "role": "admin", "csrf_token": token})
        assert r.status_code == 403


def test_failed_logins_are_limited_per_account_and_per_address(seeded: Path) -> None:
    env = {
        "ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ACCOUNT": "3/15minutes",
        "ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ADDRESS": "6/15minutes",
    }
    with running_dashboards(seeded, env) as server, web.client(base_url=server.url) as c:

        def attempt(name: str, password: str) -> int:
            token = csrf_token(c.get("/login").text)
            return c.post("/login", data={"name": name, "password": password, "csrf_token": token}).status_code

        assert [attempt(VIEWER, "bad-password-x") for _ in range(3)] == [401, 401, 401]
        # The account is now locked, even for the right password...
        assert attempt(VIEWER, VIEWER_PASSWORD) == 429
        # ...but another account still works from this address.
        assert attempt(ADMIN, ADMIN_PASSWORD) == 303
        c.cookies.clear()
        # Spraying other names hits the per-address limit (3 failures counted already).
        assert [attempt(f"guess{i}", "bad-password-x") for i in range(3)] == [401, 401, 401]
        assert attempt("guess9", "bad-password-x") == 429
        assert attempt(ADMIN, ADMIN_PASSWORD) == 429


def test_disabling_a_user_ends_their_sessions(seeded: Path, dashboards: Server) -> None:
    env = base_env(seeded)
    run(["-m", "dashboards", "users", "add", "temp", "--password-stdin"], env, "temp-password-123\n")
    with login(dashboards.url, "temp", "temp-password-123") as c:
        assert c.get("/sites").status_code == 200
        run(["-m", "dashboards", "users", "disable", "temp"], env)
        assert c.get("/sites").status_code == 303
    assert "temp\tviewer\tdisabled" in run(["-m", "dashboards", "users", "list"], env)


def test_proxy_header_is_believed_only_from_trusted_proxies(seeded: Path) -> None:
    header = {"x-remote-user": ADMIN}
    with running_dashboards(
        seeded, {"ANALYTICS_AUTH_PROXY_HEADER": "X-Remote-User", "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32"}
    ) as server:
        r = web.get(server.url + "/admin/users", headers=header)
        assert r.status_code == 200 and "Administration" in r.text
        assert web.get(server.url + "/sites", headers={"x-remote-user": "nobody"}).status_code == 303
        # The proxy's user still needs the CSRF token for a change.
        r = web.post(server.url + "/admin/keys", data={"name": "k"}, headers=header)
        assert r.status_code == 403
    with running_dashboards(
        seeded, {"ANALYTICS_AUTH_PROXY_HEADER": "X-Remote-User", "ANALYTICS_TRUSTED_PROXIES": "192.0.2.0/24"}
    ) as server:
        assert web.get(server.url + "/admin/users", headers=header).status_code == 303
    # Without the setting the header means nothing.
    with running_dashboards(seeded) as server:
        assert web.get(server.url + "/sites", headers=header).status_code == 303


def test_failed_logins_are_audited_as_the_account_and_typed_names_are_never_stored(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    typed = "jane.doe.4711@example.com"  # what people type into a login form: often their e-mail address
    env = {"ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ACCOUNT": "2/15minutes"}
    with running_dashboards(data, env) as server, web.client(base_url=server.url) as c:

        def attempt(name: str, password: str) -> int:
            token = csrf_token(c.get("/login").text)
            return c.post("/login", data={"name": name, "password": password, "csrf_token": token}).status_code

        # Wrong passwords for an existing account, typed in another case; then one refused by the limit.
        assert [attempt("ADMIN", "wrong-password-x") for _ in range(3)] == [401, 401, 429]
        # A name that is no user: failed, then refused, then with an empty password.
        assert [attempt(typed, "wrong-password-x") for _ in range(3)] == [401, 401, 429]
        assert attempt(typed, "") == 401
        # (The users were added by `dashboards users add`: audited too, as user_add.)
        rows = [(actor, action) for _, actor, action, _ in audit_rows(data) if action.startswith("login")]
    assert rows == [(ADMIN, "login_failed")] * 2 + [(ADMIN, "login_blocked")] + [
        ("(unknown user)", "login_failed"),
        ("(unknown user)", "login_failed"),
        ("(unknown user)", "login_blocked"),
        ("(unknown user)", "login_failed"),
    ]
    # Not in the audit log, nor anywhere else the dashboards wrote (the database, its WAL, the server log).
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert typed.encode() not in f.read_bytes(), f


def _login_cookies(url: str, headers: dict[str, str]) -> list[str]:
    """The Set-Cookie values of the login form and of a good login, sent with these headers."""
    with web.client(base_url=url, headers=headers) as c:
        form = c.get("/login")
        # Sent back by hand: the client's jar keeps Secure cookies off plain HTTP, as a browser would.
        login_cookie = form.headers["set-cookie"].split(";", 1)[0]
        r = c.post(
            "/login",
            data={"name": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": csrf_token(form.text)},
            headers={"cookie": login_cookie},
        )
        assert r.status_code == 303, r.text[:300]
        return [v for k, v in [*form.headers.multi_items(), *r.headers.multi_items()] if k == "set-cookie"]


@pytest.mark.slow
def test_cookies_are_secure_when_the_request_came_over_https(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    https = {"x-forwarded-proto": "https"}
    with running_dashboards(data) as server:  # the default: auto
        # Through a TLS proxy (as the shipped nginx site says): every cookie is Secure.
        cookies = _login_cookies(server.url, https)
        assert {c.split("=", 1)[0] for c in cookies} >= {"oc_session", "oc_login_csrf", "oc_device"}
        assert all("; Secure" in c for c in cookies), cookies
        assert all("; Secure" in c for c in _login_cookies(server.url, {"forwarded": "for=192.0.2.1;proto=https"}))
        # Plain HTTP straight to the process (`make run`): not Secure, or the browser could not log in.
        assert not any("Secure" in c for c in _login_cookies(server.url, {}))
        assert not any("Secure" in c for c in _login_cookies(server.url, {"x-forwarded-proto": "http"}))
    with running_dashboards(data, {"ANALYTICS_DASHBOARDS_SECURE_COOKIES": "1"}) as server:
        assert all("; Secure" in c for c in _login_cookies(server.url, {}))
    with running_dashboards(data, {"ANALYTICS_DASHBOARDS_SECURE_COOKIES": "0"}) as server:
        assert not any("Secure" in c for c in _login_cookies(server.url, https))


def test_admin_pages_have_plain_titles_and_forms_with_the_csrf_field(dashboards: Server) -> None:
    # The admin pages share their table and add-form markup (templates/_admin.html): each page's <title> is text
    # only (the keys page once carried a <script> tag in it), and each add form posts the CSRF field.
    with login(dashboards.url, ADMIN, ADMIN_PASSWORD) as c:
        token = csrf_token(c.get("/sites").text)
        for path in ("/admin/users", "/admin/keys", "/admin/shares", "/admin/alerts"):
            html = c.get(path).text
            title = re.search(r"<title>(.*?)</title>", html, re.S)
            assert title is not None and "<" not in title.group(1) and "Admin" in title.group(1), path
            form = re.search(rf'<form method="post" action="{path}" class="stack">(.*?)</form>', html, re.S)
            assert form is not None, path
            assert f'value="{token}"' in form.group(1) and 'type="submit" class="primary"' in form.group(1), path
        alerts = c.get("/admin/alerts").text
        assert re.search(r'<select id="alert-site" name="site"><option value="[^"]+">', alerts)
        roles = '<option value="viewer">viewer</option><option value="admin">admin</option>'
        assert f'<select id="new-role" name="role">{roles}</select>' in c.get("/admin/users").text
