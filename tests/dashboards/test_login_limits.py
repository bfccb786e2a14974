"""Login limits under concurrency, against a real `dashboards serve` process (issue 13 item 2).

150 wrong passwords sent at once must not all be checked: each attempt takes
its place in the limits before its argon2 hash runs, and only a few hashes
(~64 MiB each) run at the same time. The number of password checks is read from
the audit log (one `login_failed` row per check that ran), the memory from
/proc/<pid>/status of the server.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests import web
from tests.conftest import Server
from tests.dashboards.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    audit_rows,
    csrf_token,
    memory_kib,
    reset_peak_rss,
    running_dashboards,
    users_only,
)

FLOOD = 150
ARGON2_KIB = 64 * 1024  # argon2-cffi's default memory cost per check


def _token(client: httpx.Client) -> str:
    return csrf_token(client.get("/login").text)


def _login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    return client.post("/login", data={"name": name, "password": password, "csrf_token": _token(client)})


def _flood(server: Server, attempts: list[tuple[str, str]]) -> list[httpx.Response]:
    """Every attempt at once, each on its own connection, from a browser no account knows."""
    with web.client(base_url=server.url) as c:
        token = _token(c)
        cookies = dict(c.cookies)

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(attempts), max_keepalive_connections=0)
        async with web.async_client(base_url=server.url, cookies=cookies, limits=limits, timeout=300) as c:
            posts = [c.post("/login", data={"name": n, "password": p, "csrf_token": token}) for n, p in attempts]
            return list(await asyncio.gather(*posts))

    return asyncio.run(main())


def _last_id(data: Path) -> int:
    rows = audit_rows(data)
    return rows[-1][0] if rows else 0


@pytest.mark.slow
def test_concurrent_wrong_passwords_take_their_places_before_any_hash(tmp_path: Path) -> None:
    # As many hashing slots as the account allows failures: then only the limit decides how many checks run.
    data = users_only(tmp_path / "data")
    env = {
        "ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ACCOUNT": "5/15minutes",
        "ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ADDRESS": "1000/15minutes",
        "ANALYTICS_DASHBOARDS_LOGIN_HASH_SLOTS": "5",
    }
    with running_dashboards(data, env) as server, web.client(base_url=server.url) as owner:
        # The owner has logged in from this browser before the attack.
        assert _login(owner, ADMIN, ADMIN_PASSWORD).status_code == 303
        before = _last_id(data)
        answers = _flood(server, [(ADMIN, f"wrong-password-{i}") for i in range(FLOOD)])
        statuses = Counter(r.status_code for r in answers)
        assert statuses == {401: 5, 429: FLOOD - 5}, statuses
        assert all(int(r.headers["retry-after"]) >= 1 for r in answers if r.status_code == 429)
        rows = Counter((actor, action) for _, actor, action, _ in audit_rows(data, before))
        # Exactly five password checks ran (one login_failed row each); the rest were refused unchecked.
        assert rows == {(ADMIN, "login_failed"): 5, (ADMIN, "login_blocked"): FLOOD - 5}, rows
        # The account is locked for browsers it does not know...
        with web.client(base_url=server.url) as stranger:
            r = _login(stranger, ADMIN, ADMIN_PASSWORD)
            assert r.status_code == 429 and "Too many failed logins" in r.text
        # ...but not for the browser its owner logged in from.
        assert "oc_device" in owner.cookies
        owner.cookies.delete("oc_session")
        assert _login(owner, ADMIN, ADMIN_PASSWORD).status_code == 303
        assert owner.get("/admin/users").status_code == 200


@pytest.mark.slow
def test_a_flood_of_logins_runs_few_hashes_at_once_and_memory_stays_bounded(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    with running_dashboards(data) as server, web.client(base_url=server.url) as owner:  # default limits
        assert _login(owner, VIEWER, VIEWER_PASSWORD).status_code == 303
        pid = server.proc.pid
        before = _last_id(data)
        reset_peak_rss(pid)
        start = memory_kib(pid)["VmRSS"]
        # Password spraying from one address: many names (some real, most not), all wrong.
        names = [ADMIN, VIEWER] + [f"guess{i}@example.com" for i in range(FLOOD - 2)]
        answers = _flood(server, [(n, "wrong-password-x") for n in names])
        peak = memory_kib(pid)["VmHWM"]
        statuses = Counter(r.status_code for r in answers)
        assert set(statuses) <= {401, 429} and statuses[401] >= 1, statuses
        assert all(int(r.headers["retry-after"]) >= 1 for r in answers if r.status_code == 429)
        checks = [row for row in audit_rows(data, before) if row[2] == "login_failed"]
        # At most the address's 20 failures were checked, however many arrived at once.
        assert 1 <= len(checks) == statuses[401] <= 20, (len(checks), statuses)
        # Default: 2 hashing slots (+1 for known browsers, unused here): 2 x 64 MiB, plus slack for the
        # 150 requests themselves. Unbounded, 150 concurrent checks would take gigabytes.
        assert peak - start < 3 * ARGON2_KIB + 32 * 1024, (start, peak)
        # Spend the rest of the address's failures (those refused as busy cost nothing)...
        with web.client(base_url=server.url) as stranger:
            refused = [_login(stranger, f"more{i}", "wrong-password-x") for i in range(21 - len(checks))]
            assert refused[-1].status_code == 429 and "Too many failed logins" in refused[-1].text
            assert _login(stranger, VIEWER, VIEWER_PASSWORD).status_code == 429
        # ...which does not lock out a browser the viewer logged in from before.
        owner.cookies.delete("oc_session")
        assert _login(owner, VIEWER, VIEWER_PASSWORD).status_code == 303


@pytest.mark.slow
def test_a_known_browser_cookie_works_only_for_its_account_and_only_signed(tmp_path: Path) -> None:
    data = users_only(tmp_path / "data")
    env = {"ANALYTICS_DASHBOARDS_LOGIN_LIMIT_ACCOUNT": "2/15minutes"}
    with running_dashboards(data, env) as server, web.client(base_url=server.url) as c:
        assert _login(c, VIEWER, VIEWER_PASSWORD).status_code == 303
        device = c.cookies["oc_device"]
        c.cookies.clear()
        for _ in range(2):
            assert _login(c, ADMIN, "wrong-password-x").status_code == 401
        assert _login(c, ADMIN, ADMIN_PASSWORD).status_code == 429  # locked for unknown browsers
        # The viewer's browser cookie is no pass for the admin account, nor is a forged one.
        for cookie in (device, device[:-3] + "AAA"):
            c.cookies.clear()
            c.cookies.set("oc_device", cookie, path="/login")
            assert _login(c, ADMIN, ADMIN_PASSWORD).status_code == 429
        # A known browser has its own count: its owner's own typos lock only this browser.
        c.cookies.clear()
        c.cookies.set("oc_device", device, path="/login")
        assert [_login(c, VIEWER, "typo-password").status_code for _ in range(3)] == [401, 401, 429]
