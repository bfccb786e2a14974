"""Ingest throughput against DuckDB's own JSON-lines → Parquet conversion, same files, same run.

    .venv/bin/python bench/ingest_bench.py [--events 1000000] [--runs 3] [--dir /tmp/onecloud-ingest-bench]

Spool segments (16 MiB, the collector's default size) are generated with
DuckDB in the collector's record format. The baseline is
``COPY (SELECT * FROM read_json(files)) TO 'x.parquet'``: no validation, no
partitioning, no manifest, no fsync. The aggregator's ingest does all of that
(type checks against the inventory, quarantine routing, site/day partitions,
staging, the manifest, publishing, deleting the segments). Prints medians and
the ratio ingest/baseline throughput (target >= 0.8).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path


def make_segments(directory: Path, events: int) -> list[Path]:
    import duckdb

    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    start = 1_795_000_000
    con.execute(f"""
    COPY (
      SELECT 1 AS v,
        ['www.onecloud.example', 'docs.onecloud.example'][1 + i % 2] AS site,
        CAST({start} + i * 86400 * 2 // {events} AS BIGINT) AS ts,
        CASE WHEN i % 4 = 3 THEN 'engagement' ELSE 'pageview' END AS name,
        '/p/' || CAST(hash(i) % 300 AS VARCHAR) AS path,
        CASE WHEN i % 3 = 0 THEN 'Google' END AS referrer_source,
        CASE WHEN i % 3 = 0 THEN 'google.com' END AS referrer_host,
        CASE WHEN i % 3 = 0 THEN '/' END AS referrer_path,
        CASE WHEN i % 3 = 0 THEN 'Organic Search' ELSE 'Direct' END AS channel,
        NULL::VARCHAR AS utm_source, NULL::VARCHAR AS utm_medium, NULL::VARCHAR AS utm_campaign,
        NULL::VARCHAR AS utm_content, NULL::VARCHAR AS utm_term,
        'Chrome' AS browser, '131' AS browser_version, 'Windows' AS os, '10' AS os_version, 'desktop' AS device,
        3320 AS asn, 'Deutsche Telekom AG' AS isp, NULL::VARCHAR AS network_domain,
        hash(i // 4, 'k') AS day_key,
        CASE WHEN i % 4 = 3 THEN CAST(hash(i) % 100000 AS INTEGER) END AS engaged_ms,
        CASE WHEN i % 4 = 3 THEN CAST(hash(i) % 101 AS INTEGER) END AS scroll_depth
      FROM range({events}) t(i)
    ) TO '{directory}' (FORMAT json, FILE_SIZE_BYTES '16MiB', FILENAME_PATTERN 'seg_{{i}}', PER_THREAD_OUTPUT false)
    """)
    segments = sorted(directory.glob("*.json"))
    for n, seg in enumerate(segments):
        seg.rename(directory / f"{n:020d}-bench-0-{n:06d}.jsonl")
    return sorted(directory.glob("*.jsonl"))


def baseline(segments: list[Path], out: Path) -> float:
    import duckdb

    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_json(?)) TO '{out}' (FORMAT parquet)", [[str(s) for s in segments]])
    elapsed = time.perf_counter() - t0
    con.close()
    out.unlink()
    return elapsed


def ingest(source: Path, data_dir: Path) -> tuple[float, int]:
    from aggregator.ingest import Ingester
    from aggregator.settings import Settings

    shutil.rmtree(data_dir, ignore_errors=True)
    sealed = data_dir / "spool" / "sealed"
    sealed.mkdir(parents=True)
    for seg in source.glob("*.jsonl"):
        os.link(seg, sealed / seg.name)  # ingest deletes its input; the source stays
    settings = Settings(data_dir=data_dir)
    t0 = time.perf_counter()
    report = Ingester(settings).run_once()
    return time.perf_counter() - t0, report.events


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/onecloud-ingest-bench"))
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    source = args.dir / "segments"
    if not source.is_dir() or not list(source.glob("*.jsonl")):
        shutil.rmtree(source, ignore_errors=True)
        make_segments(source, args.events)
    segments = sorted(source.glob("*.jsonl"))
    size = sum(s.stat().st_size for s in segments)
    print(f"{args.events:,} events in {len(segments)} segments, {size / 2**20:.0f} MiB")
    base_t, ingest_t = [], []
    for _ in range(args.runs):  # interleaved, so load from other processes hits both alike
        base_t.append(baseline(segments, args.dir / "baseline.parquet"))
        elapsed, n = ingest(source, args.dir / "data")
        assert n == args.events, (n, args.events)
        ingest_t.append(elapsed)
    b, i = statistics.median(base_t), statistics.median(ingest_t)
    print(f"baseline  (read_json → one Parquet file): median {b:.2f}s  {args.events / b:>12,.0f} events/s")
    print(f"ingest    (validated, partitioned, exactly-once): median {i:.2f}s  {args.events / i:>12,.0f} events/s")
    print(f"ratio ingest/baseline throughput: {b / i:.2f}  (target >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
