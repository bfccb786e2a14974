"""Dashboard overview latency over 90 days at 1M / 10M (/ 100M) events; run by hand.

    .venv/bin/python bench/query_bench.py [--sizes 1000000,10000000] [--runs 5] [--repeats 3] [--dir /tmp/qbench]

The lake is generated directly as Parquet with DuckDB SQL (one site, 90 UTC
days, ~4 events per visitor-day, so 10M events have 2.5M day keys as in
ARCHITECTURE.md), then closed days are rolled up with the aggregator's own
``refresh_rollups``. "Today" (the 90th day) stays raw, as on a live dashboard.

The overview = KPI row (visitors, visits, pageviews, views/visit, bounce rate,
visit duration) + daily series + 14 breakdown panels (pages, entry and exit
pages, source, referrer, channel, three UTM, browser, OS, device, ISP, and
time on page per page), each top 10, k-anonymous, in one ``Querier.run_many``
call. Every measurement is a fresh process so its peak RSS is its own; "cold"
is that process's first overview (rollup files read from disk, and with today
raw, today rolled up in memory), "warm" the median of the next --runs - 1
(rollup rows cached in the process, as in a long-running dashboards server).
Each mode runs in --repeats fresh processes (the machine is shared, so single
runs are noisy): the table shows the median cold and the median of the warm
medians. Measured twice: with today's rollup current (what `ingest --follow`
keeps after each batch) and with today's rollup hidden, as right after a batch
before the refresh.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SITE = "www.onecloud.example"
DAYS = 90
LAST_DAY = dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.UTC)

MODES = ("today rolled up", "today stale", "today raw", "filter 30d", "filter 90d")

PANELS = [
    "event:page", "visit:entry_page", "visit:exit_page", "visit:source", "visit:referrer", "visit:channel",
    "visit:utm_source", "visit:utm_medium", "visit:utm_campaign", "visit:browser", "visit:os", "visit:device",
    "visit:isp",
]  # fmt: skip


def generate(data_dir: Path, events: int, threads: int) -> None:
    import duckdb

    from aggregator.lake import site_dir_name
    from aggregator.rollup import refresh_rollups
    from aggregator.settings import Settings

    per_visitor = 4
    visitors = events // DAYS // per_visitor
    out = data_dir / "lake" / "events" / f"site={site_dir_name(SITE)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    first = LAST_DAY - dt.timedelta(days=DAYS - 1)
    con = duckdb.connect(config={"threads": threads, "memory_limit": "4GB"})
    t0 = time.perf_counter()
    con.execute(f"""
    COPY (
      WITH v AS (
        SELECT d, v, CAST(hash(d, v, 1) >> 1 AS BIGINT) AS h,
               CAST(DATE '{first}' + CAST(d AS INTEGER) AS TIMESTAMP)
                 + to_seconds(CAST(hash(d, v) % 86000 AS BIGINT)) AS t0
        FROM range({DAYS}) r1(d), range({visitors}) r2(v)
      )
      SELECT '{SITE}' AS site,
        least(t0 + to_seconds(CAST(i * (20 + h % 400) AS BIGINT)),
              date_trunc('day', t0) + INTERVAL '86399 seconds') AS ts,
        CASE WHEN i % 4 = 3 THEN 'engagement' WHEN (h + i) % 23 = 0 THEN 'File Download' ELSE 'pageview' END AS name,
        '/p/' || CAST(((h >> 8) + i * 7) % 300 AS VARCHAR) AS path,
        ['Google', 'Bing', NULL, NULL, 'LinkedIn', 'news.example.org', 'GitHub'][1 + h % 7] AS referrer_source,
        ['google.com', 'bing.com', NULL, NULL, 'linkedin.com', 'news.example.org', 'github.com'][1 + h % 7]
          AS referrer_host,
        CASE WHEN h % 7 IN (2, 3) THEN NULL ELSE '/' END AS referrer_path,
        ['Organic Search', 'Organic Search', 'Direct', 'Direct', 'Organic Social', 'Referral', 'Referral'][1 + h % 7]
          AS channel,
        CASE WHEN h % 11 = 0 THEN 'newsletter' END AS utm_source,
        CASE WHEN h % 11 = 0 THEN 'email' END AS utm_medium,
        CASE WHEN h % 11 = 0 THEN 'autumn' END AS utm_campaign,
        NULL::VARCHAR AS utm_content, NULL::VARCHAR AS utm_term,
        ['Chrome', 'Safari', 'Firefox', 'Edge'][1 + (h >> 3) % 4] AS browser,
        CAST(120 + (h >> 5) % 12 AS VARCHAR) AS browser_version,
        ['Windows', 'Mac OS X', 'iOS', 'Android', 'Linux'][1 + (h >> 7) % 5] AS os,
        CAST(10 + (h >> 9) % 5 AS VARCHAR) AS os_version,
        ['desktop', 'mobile', 'tablet'][1 + (h >> 11) % 3] AS device,
        CAST([3320, 7922, 2856, 15169, 6830][1 + (h >> 13) % 5] AS INTEGER) AS asn,
        ['Deutsche Telekom AG', 'Comcast', 'BT', 'Google LLC', 'Liberty Global'][1 + (h >> 13) % 5] AS isp,
        NULL::VARCHAR AS network_domain,
        h AS day_key,
        CASE WHEN i % 4 = 3 THEN CAST(1000 + h % 120000 AS INTEGER) END AS engaged_ms,
        CASE WHEN i % 4 = 3 THEN CAST(h % 101 AS SMALLINT) END AS scroll_depth,
        strftime(CAST(ts AS DATE), '%Y-%m-%d') AS day
      FROM v, range({per_visitor}) r3(i)
    ) TO '{out}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, FILENAME_PATTERN 'bench_{{i}}')
    """)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    settings = Settings(data_dir=data_dir, duckdb_threads=threads, duckdb_memory_limit="1500MB")
    built = refresh_rollups(settings, NOW, today=True)  # as `ingest --follow` keeps them
    print(
        f"  generated {events:,} events in {gen:.1f}s; {built} daily rollups in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )


def refresh_rollups_today(data_dir: Path) -> None:
    """Every day's rollup current for this code (a lake made by older code gets the missing ones built)."""
    from aggregator.rollup import refresh_rollups
    from aggregator.settings import Settings

    t0 = time.perf_counter()
    built = refresh_rollups(Settings(data_dir=data_dir, duckdb_memory_limit="1500MB"), NOW, today=True)
    if built:
        print(f"  built {built} rollups missing for this code in {time.perf_counter() - t0:.1f}s", flush=True)


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over fork + exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def overview(data_dir: Path, runs: int, mode: str) -> None:
    """Runs in its own process: prints one JSON line with the timings and peak RSS."""
    from aggregator.filters import Filter
    from aggregator.query import Querier, QueryRequest
    from aggregator.settings import Settings

    # "stale": as the dashboards run it (ANALYTICS_ROLLUP_MAX_STALE=120), right after a batch.
    stale = 3600.0 if mode == "today stale" else 0.0
    settings = Settings(data_dir=data_dir, duckdb_memory_limit="1500MB", rollup_max_stale=stale)
    q = Querier(settings)
    filters: tuple[Filter, ...] = ()
    date_range: str | tuple[dt.date, dt.date] = "all"
    if mode.startswith("filter"):  # "filter 30d" / "filter 90d": browser = Chrome (a quarter of the visitors)
        filters = (Filter("is", "visit:browser", ("Chrome",)),)
        date_range = (LAST_DAY - dt.timedelta(days=int(mode[-3:-1]) - 1), LAST_DAY)
    requests = [
        QueryRequest(
            SITE,
            ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"),
            date_range,
            filters=filters,
        ),
        QueryRequest(SITE, ("visitors", "pageviews"), date_range, ("time:day",), filters),
        *[QueryRequest(SITE, ("visitors",), date_range, (p,), filters, limit=10) for p in PANELS],
        QueryRequest(
            SITE, ("visitors", "time_on_page", "scroll_depth"), date_range, ("event:page",), filters, limit=10
        ),
    ]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        results = q.run_many(requests, NOW)
        times.append(time.perf_counter() - t0)
    kpi = results[0].rows[0].metrics
    rss_mb = _peak_rss_mb()
    print(
        json.dumps(
            {
                "median_s": statistics.median(times[1:] or times),
                "min_s": min(times),
                "cold_s": times[0],
                "rss_mb": rss_mb,
                "kpi": list(kpi),
                "raw_days": results[1].raw_days,
                "rollup_days": results[1].rollup_days,
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per size and mode")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/onecloud-query-bench"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: " + ", ".join(MODES))
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        overview(args.measure, args.runs, args.mode)
        return 0
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        data_dir = args.dir / f"n{size}"
        if not (data_dir / "lake" / "rollups").is_dir():
            print(f"generating {size:,} events ...", flush=True)
            generate(data_dir, size, args.threads)
        refresh_rollups_today(data_dir)
        result = {}
        for mode in args.modes.split(","):
            samples = []
            for _ in range(args.repeats):
                with _batch_landed(data_dir, mode):
                    cmd = [sys.executable, __file__, "--measure", str(data_dir), "--runs", str(args.runs)]
                    out = subprocess.run([*cmd, "--mode", mode], capture_output=True, text=True, check=True)
                samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
            colds = [m["cold_s"] for m in samples]
            m = {
                "cold_s": statistics.median(colds),
                "cold_range": (min(colds), max(colds)),
                "median_s": statistics.median(m["median_s"] for m in samples),
                "min_s": min(m["min_s"] for m in samples),
                "rss_mb": max(m["rss_mb"] for m in samples),
                "rollup_days": samples[0]["rollup_days"],
                "raw_days": samples[0]["raw_days"],
            }
            result[mode] = m
            lo, hi = m["cold_range"]
            print(
                f"  {size:>12,} events, {mode:>15}: overview cold median {m['cold_s'] * 1000:7.1f} ms "
                f"({lo * 1000:.0f}-{hi * 1000:.0f} over {len(samples)} processes), warm median "
                f"{m['median_s'] * 1000:7.1f} ms (min {m['min_s'] * 1000:.1f}), peak RSS {m['rss_mb']:.0f} MB, "
                f"rollup days {m['rollup_days']}, raw days {m['raw_days']}",
                flush=True,
            )
        rows.append((size, result))
    modes = args.modes.split(",")
    print("\n| events (90 days) | " + " | ".join(f"{m}: cold / warm" for m in modes) + " | peak RSS |")
    print("| ---: | " + "---: | " * len(modes) + "---: |")
    for size, r in rows:
        cells = " | ".join(f"{r[m]['cold_s'] * 1000:.0f} / {r[m]['median_s'] * 1000:.0f} ms" for m in modes)
        print(f"| {size:,} | {cells} | {max(r[m]['rss_mb'] for m in modes):.0f} MB |")
    return 0


@contextlib.contextmanager
def _batch_landed(data_dir: Path, mode: str) -> Iterator[None]:
    """For the "today raw" and "today stale" modes: today's rollup no longer matches its files.

    "raw": today's rollup is hidden (a querier rolls today up in memory, exact);
    "stale": a small batch (1,000 of today's events again) lands in today, so its
    rollup is one batch old, as between a batch and `ingest --follow`'s refresh.
    """
    today = next(data_dir.glob(f"lake/rollups/*/day={LAST_DAY}"))
    hidden = today.with_name("hidden-today")
    extra = next(data_dir.glob(f"lake/events/*/day={LAST_DAY}")) / "bench_batch.parquet"
    try:
        if mode == "today raw":
            today.rename(hidden)
        elif mode == "today stale":
            import duckdb

            src = str(extra.parent / "*.parquet")
            duckdb.execute(f"COPY (SELECT * FROM read_parquet('{src}') LIMIT 1000) TO '{extra}' (FORMAT parquet)")
            os.utime(next(today.glob("*.parquet")))  # built "just now", within the staleness limit
        yield
    finally:
        if hidden.exists():
            hidden.rename(today)
        extra.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
