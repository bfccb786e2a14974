"""Two collector "hosts" (separate data dirs) sharing the PostgreSQL salt store agree on day keys."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests import web
from tests.conftest import CHROME_UA, running_collector, sealed_records
from tests.scaleout.servers import Postgres

BODY = {"n": "pageview", "u": "https://www.onecloud.example/", "d": "www.onecloud.example"}


def _keys(data_dir: Path, n: int) -> list[object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = sealed_records(data_dir)
        if len(records) >= n:
            return [r["day_key"] for r in records]
        time.sleep(0.05)
    raise AssertionError(f"expected {n} records in {data_dir}")


def test_two_hosts_give_the_same_visitor_the_same_key(
    tmp_path: Path, pg: Postgres, collector_env: dict[str, str]
) -> None:
    dsn = pg.new_salt_db("salts_" + uuid.uuid4().hex[:8])
    env = {**collector_env, "ANALYTICS_SALT_STORE": "postgres", "ANALYTICS_SALT_DSN": dsn}
    with running_collector(tmp_path / "host-a", env) as a, running_collector(tmp_path / "host-b", env) as b:
        for server, ip in ((a, "8.8.8.8"), (b, "8.8.8.8"), (b, "1.1.1.1")):
            r = web.post(server.url + "/api/event", json=BODY, headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip})
            assert r.status_code == 202, r.text
        (key_a,) = _keys(a.data_dir, 1)
        key_b, key_other = _keys(b.data_dir, 2)
    assert key_a == key_b  # same visitor, different hosts: one visitor
    assert key_other != key_a
    # Neither host wrote a salt file: the shared store is the only place the salt lives.
    assert not (tmp_path / "host-a" / "salts").exists() and not (tmp_path / "host-b" / "salts").exists()
