"""Dashboards test helpers: a seeded lake made by the real ingest, real dashboards processes, real users."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest

from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests import web
from tests.conftest import (
    CHROME_UA,
    ROOT,
    Server,
    built_once,
    free_port,
    running_collector,
    sealed_records,
    start_server,
)
from tests.events import make_event

DEMO = "demo.onecloud.example"
XSS_SITE = "www.onecloud.example"
SITES = f"{DEMO},{XSS_SITE}"
ADMIN, ADMIN_PASSWORD = "admin", "admin-password-123"
VIEWER, VIEWER_PASSWORD = "viewer", "viewer-password-123"

# Attacker-controlled values as they could arrive from the public internet (PRIVACY.md rule 11).
XSS_PAYLOADS = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "'><svg onload=window.__xss=1>",
    "javascript:window.__xss=1",
    "</title><script>window.__xss=1</script>",
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '" onfocus="window.__xss=1" autofocus="',
    "{{7*7}}<b onmouseover=window.__xss=1>x</b>",
    '=HYPERLINK("http://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
)


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({"ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SITES": SITES, "ANALYTICS_DUCKDB_THREADS": "2"})
    return env


# Sent through a real collector process (marked "c:" so a test can tell them from the spool-record corpus);
# no commas, because ANALYTICS_CUSTOM_EVENTS lists them as allowed custom event names.
COLLECTOR_PAYLOADS = (
    "c:<script>window.__xss=1</script>",
    'c:"><img src=x onerror=window.__xss=1>',
    "c:'><svg onload=window.__xss=1>",
    "c:=HYPERLINK(1)",
)


def send_through_collector(data: Path) -> int:
    """Each payload in path, referrer, UTM values and event name, from 6 addresses through the real collector.

    Six, one more than the record corpus, so these rows rank first in every top-10 panel.
    """
    env = {
        "ANALYTICS_SITES": SITES,
        "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
        "ANALYTICS_CUSTOM_EVENTS": ",".join(COLLECTOR_PAYLOADS),
    }
    sent = 0
    with running_collector(data, env) as collector, web.client(base_url=collector.url, timeout=10) as client:
        for i, payload in enumerate(COLLECTOR_PAYLOADS):
            utm = urlencode({"utm_source": payload, "utm_medium": payload, "utm_campaign": payload})
            for v in range(6):
                headers = {"User-Agent": CHROME_UA, "X-Forwarded-For": f"198.51.100.{i * 10 + v + 1}"}
                for body in (
                    {
                        "n": "pageview",
                        "u": f"https://{XSS_SITE}/{quote(payload)}?{utm}",
                        "d": XSS_SITE,
                        "r": f"https://news.example.org/{quote(payload)}",
                    },
                    {"n": payload, "u": f"https://{XSS_SITE}/{quote(payload)}", "d": XSS_SITE},
                ):
                    r = client.post("/api/event", json=body, headers=headers)
                    assert r.status_code == 202 and "x-drop-reason" not in r.headers, (r.status_code, r.headers)
                    sent += 1
        deadline = time.monotonic() + 10
        while len(sealed_records(data)) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
    # Stopped: the open segment is sealed (or was, after ANALYTICS_SPOOL_SEGMENT_SECONDS=1).
    deadline = time.monotonic() + 10
    while any((data / "spool" / "open").glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    return sent


# Stored text fields an attacker can fill (beyond the path): each gets every payload.
_FREE_TEXT = ("referrer_source", "referrer_host", "channel", "utm_source", "utm_medium", "utm_campaign")
_FREE_TEXT += ("browser", "browser_version", "os", "os_version", "device", "isp")


def xss_events(now: dt.datetime) -> list[Event]:
    """Every payload in every free-text field, each from K=5 distinct visitors (so rows are shown)."""
    out: list[Event] = []
    ts = int(now.timestamp()) - 3600
    key = 10**12
    for i, payload in enumerate(XSS_PAYLOADS):
        for v in range(5):
            key += 1
            out.append(
                make_event(
                    site=XSS_SITE,
                    ts=ts + i * 10 + v,
                    path="/" + payload,
                    referrer_path="/" + payload,
                    day_key=key,
                    **dict.fromkeys(_FREE_TEXT, payload),
                )
            )
            out.append(
                make_event(
                    site=XSS_SITE,
                    ts=ts + i * 10 + v + 1,
                    name=payload,
                    path="/" + payload,
                    browser="Chrome",
                    browser_version="131",
                    os="Windows",
                    os_version="10",
                    day_key=key,
                )
            )
    return out


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir: two weeks of synthetic traffic plus the XSS corpus, through the real `aggregator ingest`.

    Built once per run (``built_once``); each worker serves its own copy.
    """
    return built_once(tmp_path_factory, "dash", seed)


def seed(data: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    events = [
        e
        for e in generate(Traffic(start=today - dt.timedelta(days=13), days=14, visitors_per_day={DEMO: 40}, seed=7))
        if e.ts <= now.timestamp() - 60
    ]
    events += xss_events(now)
    events.sort(key=lambda e: e.ts)
    write_segments(events, data / "spool" / "sealed", per_segment=5000)
    sent = send_through_collector(data)
    env = base_env(data)
    report = json.loads(run(["-m", "aggregator", "ingest"], env).splitlines()[-1])
    assert report["events"] == len(events) + sent and report["quarantined"] == 0
    add_users(data)


def add_users(data: Path) -> None:
    """The admin and the viewer, added as an operator does (the real CLI: a process and an argon2 hash each)."""
    env = base_env(data)
    run(["-m", "dashboards", "users", "add", ADMIN, "--admin", "--password-stdin"], env, ADMIN_PASSWORD + "\n")
    run(["-m", "dashboards", "users", "add", VIEWER, "--password-stdin"], env, VIEWER_PASSWORD + "\n")


def start_dashboards(data_dir: Path, env: dict[str, str] | None = None, timeout: float = 30.0) -> Server:
    port = free_port()
    full_env = base_env(data_dir)
    full_env.update(env or {})
    args = ["dashboards", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return start_server("dashboards", args, data_dir, full_env, port=port, cwd=data_dir.parent, timeout=timeout)


@contextlib.contextmanager
def running_dashboards(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start_dashboards(data_dir, env)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.kill(signal.SIGTERM)


@pytest.fixture(scope="session")
def dashboards(seeded: Path) -> Iterator[Server]:
    with running_dashboards(seeded) as server:
        yield server


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    m = _TOKEN.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


@contextlib.contextmanager
def login(url: str, name: str, password: str) -> Iterator[httpx.Client]:
    """A logged-in httpx client (the real login form: GET for the token, POST with it)."""
    with web.client(base_url=url, timeout=30) as c:
        token = csrf_token(c.get("/login").text)
        r = c.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": "/sites"})
        assert r.status_code == 303, (r.status_code, r.text[:300])
        yield c


@dataclass
class Admin:
    client: httpx.Client

    def create_key(self, name: str = "test") -> str:
        token = csrf_token(self.client.get("/admin/keys").text)
        r = self.client.post("/admin/keys", data={"name": name, "csrf_token": token})
        m = re.search(r'id="new-key">([^<]+)<', r.text)
        assert r.status_code == 200 and m, r.text[:500]
        return m.group(1)


@pytest.fixture
def admin(dashboards: Server) -> Iterator[Admin]:
    with login(dashboards.url, ADMIN, ADMIN_PASSWORD) as client:
        yield Admin(client)


def users_only(data_dir: Path) -> Path:
    """A data dir with no lake, only the admin and the viewer (for tests of login and request limits).

    ``data_dir`` may hold a lake already. The users' file is a copy of one made once per process by
    ``add_users``: two CLI processes with their argon2 hashes cost ~2 CPU s, and eleven tests need the same.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in _users_template().iterdir():
        shutil.copy2(path, data_dir / path.name)
    return data_dir


@functools.cache
def _users_template() -> Path:
    root = Path(tempfile.mkdtemp(prefix="oc-users-"))
    atexit.register(shutil.rmtree, root, True)
    add_users(root / "data")
    return root / "data"


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident since start or the last reset) of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux: 5 in /proc/<pid>/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def audit_rows(data_dir: Path, since_id: int = 0) -> list[tuple[int, str, str, str | None]]:
    """(id, actor, action, detail) of the audit log's entries after ``since_id``, read from the product's file."""
    import sqlite3

    con = sqlite3.connect(f"file:{data_dir / 'dashboards.sqlite3'}?mode=ro", uri=True)
    try:
        return list(
            con.execute("SELECT id, actor, action, detail FROM audit_log WHERE id > ? ORDER BY id", (since_id,))
        )
    finally:
        con.close()


@pytest.fixture(scope="session")
def known_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks of known traffic through the real ingest, made once per run; copy it before writing to it."""
    from tests.dashboards.lakes import known_events, make_lake

    return built_once(tmp_path_factory, "known", lambda data: make_lake(data, known_events()))


def copy_of(lake: Path, tmp: Path) -> Path:
    import shutil

    return Path(shutil.copytree(lake, tmp / "data"))
