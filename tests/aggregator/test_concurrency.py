"""Ingest, compaction, rollups and several readers as separate processes: no lock errors, no torn reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from tests.aggregator.conftest import ROOT, run_cli

SITE = "www.onecloud.example"

READER = """
import datetime as dt, json, sys, time
from pathlib import Path
from aggregator.query import Querier, QueryRequest
from aggregator.settings import Settings
settings = Settings(data_dir=Path(sys.argv[1]), duckdb_threads=1)
deadline = time.monotonic() + float(sys.argv[2])
q = Querier(settings)
now = dt.datetime.now(dt.UTC)
while time.monotonic() < deadline:
    r = q.run(QueryRequest(sys.argv[3], ("events", "visitors"), (dt.date(2026, 11, 19), dt.date(2026, 11, 23))), now)
    days = (dt.date(2026, 11, 19), dt.date(2026, 11, 23))
    b = q.run(QueryRequest(sys.argv[3], ("events",), days, ("event:page",)), now)
    print(json.dumps([r.rows[0].metrics[0], len(b.rows)]), flush=True)
"""


@pytest.mark.slow
def test_ingest_and_readers_run_together(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    events = generate(Traffic(dt.date(2026, 11, 20), 2, {SITE: 150}, seed=11))
    chunks = [events[i : i + 500] for i in range(0, len(events), 500)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update(
        {
            "ANALYTICS_DATA_DIR": str(settings.data_dir),
            "ANALYTICS_INGEST_INTERVAL": "0.2",
            "ANALYTICS_DUCKDB_THREADS": "1",
        }
    )
    write_segments(chunks[0], settings.sealed_dir, prefix="c0")
    ingest = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "ingest", "--follow"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(settings.data_dir), "6", SITE],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for n, chunk in enumerate(chunks[1:], start=1):
            time.sleep(0.15)
            write_segments(chunk, settings.sealed_dir, per_segment=200, prefix=f"c{n:03d}")
            if n % 4 == 0:  # writers queue on the lake's lock; readers never wait
                assert run_cli(settings, "compact").returncode == 0
        outputs = [r.communicate(timeout=120) for r in readers]
        for r, (out, err) in zip(readers, outputs, strict=True):
            assert r.returncode == 0, err
            counts = [json.loads(line)[0] for line in out.splitlines()]
            assert counts, err
            # Never more than was written, never going backwards: no torn or doubled reads.
            assert counts == sorted(counts) and counts[-1] <= len(events)
        deadline = time.monotonic() + 60
        while list(settings.sealed_dir.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        ingest.terminate()
        ingest.communicate(timeout=30)
    final = run_cli(
        settings,
        "query",
        "--json",
        json.dumps({"site_id": SITE, "metrics": ["events"], "date_range": ["2026-11-19", "2026-11-23"]}),
    )
    expected_events = sum(1 for e in events if e.name != "engagement")
    assert json.loads(final.stdout)["results"][0]["metrics"] == [expected_events]
