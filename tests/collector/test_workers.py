"""Several worker processes on one host: one salt, one day key per visitor, one segment per worker."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests import web
from tests.conftest import CHROME_UA, running_collector, sealed_records

SITE = "www.onecloud.example"


def writer_pid(segment: str) -> str:
    """The writing process of ``<start>-<host>-<pid>-<seq>.jsonl`` (collector/spool.py); a host name may hold dashes."""
    return segment.removesuffix(".jsonl").rsplit("-", 2)[1]


def test_writer_pid_reads_names_of_hosts_with_dashes() -> None:
    assert writer_pid("00000001764600000000-web-01.example-4711-000003.jsonl") == "4711"
    assert writer_pid("00000001764600000000-host-42-000000.jsonl") == "42"


@pytest.mark.slow
def test_workers_share_the_day_salt(tmp_path: Path, isp_db: Path) -> None:
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": SITE, "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32"}
    data_dir = tmp_path / "data"
    with running_collector(data_dir, env, workers=2) as server:
        for i in range(60):
            # A new connection each time, so the kernel spreads them over both workers.
            body = json.dumps({"n": "pageview", "u": f"https://{SITE}/p{i % 3}", "d": SITE}).encode()
            for ip in ("8.8.8.8", "1.1.1.1"):
                r = web.post(
                    server.url + "/api/event",
                    content=body,
                    headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip, "Content-Type": "text/plain"},
                )
                assert r.status_code == 202
        # Whichever worker answers the scrape, it reports the sum over both.
        for _ in range(4):
            text = web.get(server.url + "/metrics").text
            accepted = [ln for ln in text.splitlines() if ln.startswith("analytics_events_accepted_total")]
            assert accepted and float(accepted[0].split()[1]) == 120.0, accepted
    records = sealed_records(data_dir)
    assert len(records) == 120
    # One day key per visitor and day (a run across midnight UTC gives a visitor a second day, and key).
    keys_by_visitor_day: dict[tuple[object, dt.date], set[object]] = {}
    for r in records:
        day = dt.datetime.fromtimestamp(r["ts"], dt.UTC).date()
        keys_by_visitor_day.setdefault((r["asn"], day), set()).add(r["day_key"])
    assert {asn for asn, _ in keys_by_visitor_day} == {15169, 13335}
    assert all(len(keys) == 1 for keys in keys_by_visitor_day.values()), "one visitor got several day keys"
    writers = {writer_pid(p.name) for p in (data_dir / "spool" / "sealed").glob("*.jsonl")}
    assert len(writers) == 2, f"expected segments from both workers, got {writers}"
    # One salt file per day, shared by both workers: today's, and from 23:51 UTC tomorrow's, drawn early.
    salts = sorted(p.name for p in (data_dir / "salts").glob("*.salt"))
    days = {dt.datetime.fromtimestamp(r["ts"], dt.UTC).date() for r in records}
    assert salts[: len(days)] == [f"{d.isoformat()}.salt" for d in sorted(days)], salts
    assert len(salts) <= len(days) + 1, salts
