"""Scale-out figures: the lake on local SeaweedFS vs local disk, and collector throughput by process count.

    .venv/bin/python bench/scaleout_bench.py [--events 300000] [--rounds 3] [--seconds 8]

Part 1 writes the same spool segments (bench/ingest_bench.py's generator) into
two data dirs and ingests them into a lake on local disk and into a lake on a
SeaweedFS S3 server started on loopback (tests/scaleout/servers.py), then times
the dashboard overview (KPI row, daily series, six top-10 panels; a fresh
Querier each time, so file listing is included) on both. Each round uses a fresh
lake. Part 2 runs `collector serve --workers N` for N = 1, 2, 3 under wrk with
bench/collector_bench.py's realistic traffic. Medians and ratios are printed as
Markdown (paste into bench/RESULTS.md). On a 2-core machine wrk,
the collectors and SeaweedFS share the cores: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from collector_bench import Proc, free_port, lua_script, wrk  # noqa: E402
from ingest_bench import make_segments  # noqa: E402

from aggregator.ingest import Ingester  # noqa: E402
from aggregator.query import Querier, QueryRequest  # noqa: E402
from aggregator.settings import Settings  # noqa: E402
from tests.scaleout.servers import seaweedfs_server  # noqa: E402

SITE = "www.onecloud.example"
PANELS = ("event:page", "visit:source", "visit:browser", "visit:os", "visit:device", "visit:entry_page")


def overview(settings: Settings, start: dt.date, end: dt.date) -> float:
    now = dt.datetime.combine(end, dt.time(23, 0), dt.UTC)
    metrics = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
    requests = [QueryRequest(SITE, metrics, (start, end)), QueryRequest(SITE, ("visitors", "pageviews"), (start, end),
                                                                         ("time:day",))]  # fmt: skip
    requests += [QueryRequest(SITE, ("visitors",), (start, end), (d,), limit=10) for d in PANELS]
    t0 = time.perf_counter()
    q = Querier(settings)
    try:
        q.run_many(requests, now)
    finally:
        q.close()
    return time.perf_counter() - t0


def lake_part(args: argparse.Namespace, tmp: Path) -> list[str]:
    segments = tmp / "segments"
    files = make_segments(segments, args.events)
    size = sum(f.stat().st_size for f in files)
    ingest = {"local": [], "s3": []}  # type: dict[str, list[float]]
    query = {"local": [], "s3": []}  # type: dict[str, list[float]]
    with seaweedfs_server(tmp / "seaweedfs") as s3:
        for rnd in range(args.rounds):
            lakes = {
                "local": Settings(data_dir=tmp / f"local{rnd}"),
                "s3": Settings.from_env(
                    {
                        **s3.env(),
                        "ANALYTICS_DATA_DIR": str(tmp / f"s3-{rnd}"),
                        "ANALYTICS_LAKE_URL": f"s3://lake/bench{rnd}",
                    }
                ),  # fmt: skip
            }
            for name, settings in lakes.items():
                shutil.copytree(segments, settings.sealed_dir)
                t0 = time.perf_counter()
                report = Ingester(settings).run_once()
                ingest[name].append(size / (time.perf_counter() - t0) / 2**20)
                assert report.events > 0
            from aggregator.lake import Lake

            days = Lake(lakes["local"].lake_dir).event_days(SITE)
            for name, settings in lakes.items():
                overview(settings, days[0], days[-1])  # warm the OS and the store's caches
                query[name].append(statistics.median(overview(settings, days[0], days[-1]) for _ in range(5)))
            print(f"round {rnd + 1}: ingest local {ingest['local'][-1]:.1f} MiB/s, s3 {ingest['s3'][-1]:.1f} MiB/s;"
                  f" overview local {query['local'][-1] * 1000:.0f} ms, s3 {query['s3'][-1] * 1000:.0f} ms",
                  flush=True)  # fmt: skip
    il, is3 = statistics.median(ingest["local"]), statistics.median(ingest["s3"])
    ql, qs3 = statistics.median(query["local"]) * 1000, statistics.median(query["s3"]) * 1000
    return [
        f"Lake: {args.events} events in {len(files)} segments ({size / 2**20:.0f} MiB of JSON lines), "
        f"{args.rounds} rounds, medians; raw events only (no rollups), so the overview scans Parquet.",
        "",
        "| lake on | ingest throughput | overview (8 queries) |",
        "| --- | --- | --- |",
        f"| local disk | {il:.1f} MiB/s | {ql:.0f} ms |",
        f"| SeaweedFS S3 on loopback | {is3:.1f} MiB/s | {qs3:.0f} ms |",
        f"| ratio S3 / disk | {is3 / il:.2f} | {qs3 / ql:.2f} |",
    ]


def collector_part(args: argparse.Namespace, tmp: Path) -> list[str]:
    script = tmp / "realistic.lua"
    lua_script(20000, False, 0, script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    rps: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for rnd in range(args.rounds):
        for n in (1, 2, 3):
            port = free_port()
            cenv = {**env, "ANALYTICS_DATA_DIR": str(tmp / f"c{rnd}-{n}"), "ANALYTICS_SITES": SITE,
                    "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32", "ANALYTICS_LOG_LEVEL": "warning"}  # fmt: skip
            col = Proc([sys.executable, "-m", "collector", "serve", "--port", str(port), "--workers", str(n)], cenv,
                       port)  # fmt: skip
            try:
                time.sleep(1.0 * n)  # all workers up
                wrk(col.url, script, 2, args.connections)
                rps[n].append(wrk(col.url, script, args.seconds, args.connections)["rps"])
            finally:
                col.stop()
            shutil.rmtree(tmp / f"c{rnd}-{n}", ignore_errors=True)
        print(f"round {rnd + 1}: " + ", ".join(f"{n} proc {rps[n][-1]:.0f}/s" for n in rps), flush=True)
    med = {n: statistics.median(v) for n, v in rps.items()}
    lines = [
        f"Collector: `collector serve --workers N`, wrk 1 thread {args.connections} connections, "
        f"{args.rounds} rounds x {args.seconds} s, medians.",
        "",
        "| collector processes | throughput | ratio to 1 |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {n} | {med[n]:.0f} req/s | {med[n] / med[1]:.2f} |" for n in (1, 2, 3)]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--skip-collector", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
    try:
        out = lake_part(args, tmp)
        if not args.skip_collector and shutil.which("wrk"):
            out += [""] + collector_part(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"Machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("\n".join(out))


if __name__ == "__main__":
    main()
