"""Nothing acknowledged is lost: kill -9 under concurrent load, restart, count."""

from __future__ import annotations

import collections
import json
import threading
from pathlib import Path

import httpx

from tests import web
from tests.conftest import CHROME_UA, running_collector, sealed_records, start_collector, wait_until

SITE = "www.onecloud.example"


def _load(url: str, worker: int, acked: list[str], stop: threading.Event) -> None:
    with web.client(base_url=url, timeout=5, headers={"User-Agent": CHROME_UA, "Content-Type": "text/plain"}) as c:
        seq = 0
        while not stop.is_set():
            path = f"/k/w{worker}/s{seq}"
            body = json.dumps({"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}).encode()
            seq += 1
            try:
                r = c.post("/api/event", content=body)
            except httpx.HTTPError:
                return  # the server is gone
            if r.status_code == 202:
                acked.append(path)


def test_kill_9_under_load_loses_no_acknowledged_event(tmp_path: Path, isp_db: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": SITE, "ANALYTICS_SPOOL_SEGMENT_SECONDS": "0.5"}
    total_acked = 0
    for round_ in range(2):
        server = start_collector(data_dir, env)
        acked: list[str] = []
        stop = threading.Event()
        threads = [threading.Thread(target=_load, args=(server.url, round_ * 100 + w, acked, stop)) for w in range(8)]
        for t in threads:
            t.start()
        wait_until("150 acknowledged events", lambda a=acked: len(a) > 150, timeout=60, poll=0.01)  # load going
        server.kill()  # SIGKILL to the whole process group, mid-load
        stop.set()
        for t in threads:
            t.join(timeout=10)
        total_acked += len(acked)

        # A restart recovers the dead worker's open segment.
        with running_collector(data_dir, env) as again:
            assert web.get(again.url + "/readyz").status_code == 200
        counts = collections.Counter(str(r["path"]) for r in sealed_records(data_dir))
        missing = [p for p in acked if counts[p] == 0]
        duplicated = [p for p, n in counts.items() if n > 1]
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
        assert not duplicated, f"duplicated: {duplicated[:3]}"
    assert not list((data_dir / "spool" / "open").glob("*.jsonl"))
    assert total_acked > 200
