"""A full disk turns into 503 + a failing /readyz, never a crash or a silent drop."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import CHROME_UA, running_collector, sealed_records, small_tmpfs

SITE = "www.onecloud.example"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "256k") as mnt:
        yield mnt


def test_full_disk_answers_503_and_recovers(small_disk: Path, isp_db: Path) -> None:
    data_dir = small_disk / "data"
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": SITE, "ANALYTICS_SPOOL_SEGMENT_SECONDS": "60"}
    with running_collector(data_dir, env) as server, httpx.Client(base_url=server.url, timeout=10) as c:
        headers = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}
        statuses: list[int] = []
        acked: list[str] = []
        for i in range(3000):
            path = f"/p/{'x' * 200}/n{i}"
            body = json.dumps({"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}).encode()
            r = c.post("/api/event", content=body, headers=headers)
            statuses.append(r.status_code)
            if r.status_code == 202:
                acked.append(path)
            else:
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"]
            if statuses[-5:] == [503] * 5:
                break
        assert 503 in statuses, "the disk never filled?"
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["spool"] is False
        assert c.get("/healthz").status_code == 200  # alive, just not ready

        # Free space (an operator clears room): the collector recovers by itself.
        subprocess.run(["mount", "-o", "remount,size=2m", str(small_disk)], check=True)
        r = c.post(
            "/api/event",
            content=json.dumps({"n": "pageview", "u": f"https://{SITE}/after", "d": SITE}),
            headers=headers,
        )
        assert r.status_code == 202
        acked.append("/after")
        assert c.get("/readyz").status_code == 200
        assert "Traceback" not in server.log()

    stored = [str(r["path"]) for r in sealed_records(data_dir)]
    assert sorted(stored) == sorted(acked), "stored events must be exactly the acknowledged ones"
