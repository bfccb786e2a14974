"""A full disk turns into 503 + a failing /readyz, never a crash or a silent drop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import web
from tests.conftest import CHROME_UA, running_collector, sealed_records, small_tmpfs

SITE = "www.onecloud.example"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "256k") as mnt:
        yield mnt


def test_full_disk_answers_503_and_recovers(small_disk: Path, isp_db: Path) -> None:
    data_dir = small_disk / "data"
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": SITE, "ANALYTICS_SPOOL_SEGMENT_SECONDS": "60"}
    with running_collector(data_dir, env) as server, web.client(base_url=server.url, timeout=10) as c:
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


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fill(directory: Path) -> Path:
    """Write until the file system is full; returns the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 4096)
    with open(directory / "filler-tail", "wb", buffering=0) as fh:  # the last partial block
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0")
    return filler


def test_new_day_on_a_full_disk_is_503_not_500(small_disk: Path, isp_db: Path) -> None:
    # Issue 13, item 3: at 00:00:03 on a full disk, 20 of 20 events got 500, /readyz said ready,
    # and each attempt left an empty .tmp in salts/.
    from collector.app import create_app
    from collector.settings import Settings

    t0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC).timestamp()
    clock = Clock(t0)
    data_dir = small_disk / "data"
    settings = Settings(data_dir=data_dir, sites=(SITE,), isp_db=isp_db, spool_segment_seconds=60.0)
    body = json.dumps({"n": "pageview", "u": f"https://{SITE}/", "d": SITE}).encode()
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME_UA}

    async def scenario() -> None:
        app = create_app(settings, clock=clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
            async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
                assert (await client.post("/api/event", content=body, headers=headers)).status_code == 202
                filler = fill(small_disk)
                clock.now = t0 + 12 * 3600 + 3  # 00:00:03 the next day: its salt must be written now
                for _ in range(20):
                    r = await client.post("/api/event", content=body, headers=headers)
                    assert r.status_code == 503, r.text
                    assert r.headers["retry-after"] == "5" and r.json()["field"] == "salt"
                ready = await client.get("/readyz")
                assert ready.status_code == 503, ready.text
                assert ready.json()["checks"]["salt"] is False and ready.json()["salt_error"]
                assert not list((data_dir / "salts").glob("*.tmp")), "temp files left in salts/"
                assert 'reason="unavailable"' in (await client.get("/metrics")).text

                # Room again (an operator cleared the disk): the next event gets the new day's salt.
                filler.unlink()
                (small_disk / "filler-tail").unlink()
                assert (await client.post("/api/event", content=body, headers=headers)).status_code == 202
                assert (await client.get("/readyz")).status_code == 200

    asyncio.run(scenario())
    names = sorted(p.name for p in (data_dir / "salts").iterdir())
    assert names == ["2026-11-26.salt", "2026-11-27.salt"]
