"""Three collectors behind a real nginx upstream, one PostgreSQL salt store, the lake on a real S3 server.

Hosts: ``host-a`` runs two collectors on one data dir, shared with the
aggregator's ingest (a fourth process, restarted like systemd's
``Restart=always`` when it exits); ``host-b`` runs one collector with its own
data dir and ships its sealed segments to the object store. Under load:

- the same visitor, spread over all three collectors, is ONE visitor;
- kill -9 one collector mid-load, restart it: every event answered 202 reaches
  the lake exactly once;
- stop the object store until ingest has failed on it and been restarted (no
  fixed outage length: the test waits for those events): collectors keep
  answering 202, host-b's spool grows, and ingest catches up afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from aggregator.query import Querier, QueryRequest
from aggregator.settings import Settings
from tests import web
from tests.conftest import CHROME_UA, ROOT, Server, free_port, start_collector
from tests.scaleout.servers import Postgres, SeaweedFS, seaweedfs_server

SITE = "www.onecloud.example"
VISITORS = [f"8.8.8.{i}" for i in range(1, 9)]  # eight visitors (X-Forwarded-For via nginx)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[SeaweedFS]:
    with seaweedfs_server(tmp_path / "seaweedfs") as server:
        yield server


def _nginx(tmp: Path, upstreams: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    if not shutil.which("nginx"):
        pytest.fail("nginx is not installed (make test installs it from .system-deps)")
    tmp.mkdir(parents=True)
    port = free_port()
    servers = "\n".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstreams)
    temp_paths = "\n".join(f"{d}_temp_path {tmp}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp / "nginx.conf").write_text(f"""
daemon off; master_process off; worker_processes 1; pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  {temp_paths}
  access_log off;
  upstream collectors {{ {servers} keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://collectors;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      # A collector that is down (connection refused) is skipped; a request already
      # sent is not replayed to another one (POST), the client sees the error.
      proxy_next_upstream error timeout;
    }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            web.get(url + "/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


class Supervised:
    """``aggregator ingest --follow`` restarted whenever it exits (systemd's Restart=always)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.restarts = env, log, 0
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.log, "ab") as log:
            while not self._stop.is_set():
                self._proc = subprocess.Popen([sys.executable, "-m", "aggregator", "ingest", "--follow"], cwd=ROOT,
                                              env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
                while self._proc.poll() is None and not self._stop.is_set():
                    time.sleep(0.1)
                if not self._stop.is_set():
                    self.restarts += 1
                    time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(timeout=20)
        self._thread.join(timeout=20)


def _load(url: str, tag: str, worker: int, n: int, acked: list[str], sent: list[str]) -> None:
    with web.client(base_url=url, timeout=10, headers={"Content-Type": "text/plain"}) as c:
        for seq in range(n):
            path = f"/k/{tag}/w{worker}/s{seq}"
            body = json.dumps({"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}).encode()
            ip = VISITORS[(worker + seq) % len(VISITORS)]
            sent.append(path)
            try:
                r = c.post("/api/event", content=body, headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip})
            except httpx.HTTPError:
                continue
            if r.status_code == 202:
                acked.append(path)


def _run_load(url: str, tag: str, workers: int, n: int, acked: list[str], sent: list[str]) -> list[threading.Thread]:
    threads = [threading.Thread(target=_load, args=(url, tag, w, n, acked, sent)) for w in range(workers)]
    for t in threads:
        t.start()
    return threads


def _wait_for(what: str, done: Callable[[], bool], timeout: float = 90.0) -> None:
    """Until ``done()`` holds; a clear failure (not a silent return) if it never does."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


def _spool_dirs(tmp_path: Path) -> list[Path]:
    """The collectors' spool directories (open and sealed segments of both hosts), for a failure's message."""
    return sorted(d for host in ("host-a", "host-b") for d in (tmp_path / host / "spool").glob("*") if d.is_dir())


def _lake_paths(settings: Settings) -> Counter[str]:
    from aggregator.db import connect
    from aggregator.lake import Lake

    lake = Lake(settings.lake_dir)
    files = [str(f) for d in lake.event_days(SITE) for f in lake.event_files(SITE, d)]
    if not files:
        return Counter()
    con = connect(settings)
    try:
        return Counter(r[0] for r in con.execute("SELECT path FROM read_parquet(?)", [files]).fetchall())
    finally:
        con.close()


@pytest.mark.slow
def test_three_collectors_one_visitor_nothing_acknowledged_lost(
    tmp_path: Path, pg: Postgres, s3: SeaweedFS, isp_db: Path
) -> None:
    dsn = pg.new_salt_db("salts_many")
    common = {
        "ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": SITE, "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
        "ANALYTICS_SALT_STORE": "postgres", "ANALYTICS_SALT_DSN": dsn, "ANALYTICS_SPOOL_SEGMENT_SECONDS": "0.5",
    }  # fmt: skip
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    ship = {**s3.env(), "ANALYTICS_SPOOL_SHIP_URL": "s3://spool/run"}
    ports = [free_port() for _ in range(3)]
    specs = [(host_a, common, ports[0]), (host_a, common, ports[1]), (host_b, {**common, **ship}, ports[2])]
    with ThreadPoolExecutor(len(specs)) as pool:  # three process start-ups at once, not one after another
        collectors: list[Server] = list(pool.map(lambda spec: start_collector(spec[0], spec[1], port=spec[2]), specs))
    agg_env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    agg_env.update({**s3.env(), "ANALYTICS_DATA_DIR": str(host_a), "ANALYTICS_LAKE_URL": "s3://lake/run",
                    "ANALYTICS_SPOOL_URL": "s3://spool/run", "ANALYTICS_INGEST_INTERVAL": "0.5",
                    "ANALYTICS_DUCKDB_THREADS": "1"})  # fmt: skip
    settings = Settings.from_env(agg_env)
    nginx, url = _nginx(tmp_path / "nginx", ports)
    ingest = Supervised(agg_env, tmp_path / "ingest.log")
    acked: list[str] = []
    sent: list[str] = []
    try:
        # Phase 1: load, and kill -9 one of host-a's collectors in the middle of it.
        threads = _run_load(url, "kill", 4, 150, acked, sent)
        _wait_for("the load to get going", lambda: len(acked) >= 100)
        collectors[1].kill(signal.SIGKILL)
        for t in threads:
            t.join(timeout=120)
        collectors[1] = start_collector(host_a, common, port=ports[1])  # recovers its open segment
        phase1 = len(acked)
        assert phase1 > 0.9 * len(sent), (phase1, len(sent))

        # Phase 2: the object store goes away until ingest has failed on it; collectors keep accepting.
        restarts = ingest.restarts
        s3.stop()
        before = len(acked)
        threads = _run_load(url, "outage", 4, 60, acked, sent)
        for t in threads:
            t.join(timeout=120)
        assert len(acked) - before == 4 * 60  # every event of the outage answered 202
        # host-b's spool holds its segments while the store is down (sealed after 0.5 s, not shipped).
        _wait_for("a sealed segment on host-b", lambda: any((host_b / "spool" / "sealed").glob("*.jsonl")))
        # More load while the store is still down: the spool keeps growing.
        threads = _run_load(url, "outage-late", 2, 40, acked, sent)
        for t in threads:
            t.join(timeout=120)
        _wait_for("ingest to fail on the missing store and be restarted", lambda: ingest.restarts > restarts)
        s3.start()

        # Catch-up: every acknowledged event in the lake exactly once.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                got = _lake_paths(settings)
            except OSError:
                got = Counter()
            if all(got[p] >= 1 for p in acked):
                break
            time.sleep(0.25)
        missing = [p for p in acked if got[p] == 0]
        assert not missing, (
            f"{len(missing)} acknowledged events not in the lake, by phase "
            f"{dict(Counter(p.split('/')[2] for p in missing))}; segments left in the spools: "
            f"{ {str(d.relative_to(tmp_path)): len(list(d.glob('*.jsonl'))) for d in _spool_dirs(tmp_path)} }; "
            f"ingest log:\n" + ((tmp_path / "ingest.log").read_text()[-3000:])
        )
        assert max(got.values()) == 1, [p for p, n in got.items() if n > 1][:5]
        assert set(got) <= set(sent)
        assert ingest.restarts >= 1  # it did fail while the store was down, and came back

        # One visitor per (IP, UA), however nginx spread their requests over the collectors.
        q = Querier(settings)
        try:
            now = dt.datetime.now(dt.UTC)
            r = q.run(QueryRequest(SITE, ("visitors", "pageviews"), "day"), now)
        finally:
            q.close()
        assert r.rows[0].metrics[0] == len(VISITORS)
        assert r.rows[0].metrics[1] == sum(got.values())
    finally:
        ingest.stop()
        nginx.terminate()
        nginx.wait(timeout=10)
        for c in collectors:
            if c.proc.poll() is None:
                c.kill(signal.SIGTERM)
