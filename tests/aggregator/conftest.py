"""Aggregator test helpers: real lakes in tmp_path, real subprocesses, no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from aggregator.settings import Settings
from collector.schema import Event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", duckdb_threads=2)


def identity(e: Event) -> tuple[object, ...]:
    return (e.site, e.ts, e.name, e.path, e.day_key, e.engaged_ms)


def lake_events(settings: Settings) -> Counter[tuple[object, ...]]:
    files = sorted(str(p) for p in (settings.lake_dir / "events").rglob("*.parquet"))
    if not files:
        return Counter()
    con = duckdb.connect()
    rows = con.execute(
        "SELECT site, CAST(epoch(ts) AS BIGINT), name, path, day_key, engaged_ms FROM read_parquet(?)", [files]
    ).fetchall()
    return Counter(tuple(r) for r in rows)


def run_cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    full.update({"ANALYTICS_DATA_DIR": str(settings.data_dir), "ANALYTICS_DUCKDB_THREADS": "2"})
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout
    )
