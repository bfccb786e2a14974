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

MODES = (
    "today rolled up", "today stale", "today raw", "filter 30d", "filter 90d", "page 30d", "two 30d", "or 30d",
    "goals 90d", "funnel 90d",
)  # fmt: skip
#: Filtered modes: (the bench/baseline.py filter, days). Our query layer and the Plausible-style baseline answer
#: each in the same run on the same lake.
FILTERED = {
    "filter 30d": ("browser", 30),
    "filter 90d": ("browser", 90),
    "page 30d": ("page", 30),
    "two 30d": ("two", 30),
    "or 30d": ("or", 30),
    "goals 90d": ("goals", 90),
    "funnel 90d": ("funnel", 90),
}
#: The bench site's goals (bench/sites.json's shape, docs/goals.md): page goals over the generated paths and
#: the generated custom event; the funnel has five of them.
GOALS = [
    {"page": "/p/1*"}, {"page": "/p/2*"}, {"page": "/p/3*"}, {"page": "/p/4*"}, {"page": "/p/5"},
    {"page": "/p/10"}, {"event": "File Download"},
]  # fmt: skip
FUNNEL = ["Visit /p/1*", "Visit /p/2*", "File Download", "Visit /p/3*", "Visit /p/4*"]


def write_site_config(data_dir: Path) -> None:
    """The bench site's goals and funnel in the lake's site configuration (read by the query layer)."""
    config = {
        "format": 1,
        "sites": [
            {
                "domain": SITE,
                "custom_events": ["File Download"],
                "goals": GOALS,
                "funnels": [{"name": "Bench", "steps": FUNNEL}],
            }
        ],
    }
    (data_dir / "sites.json").write_text(json.dumps(config, indent=2))


PANELS = [
    "event:page", "visit:entry_page", "visit:exit_page", "visit:source", "visit:referrer", "visit:channel",
    "visit:utm_source", "visit:utm_medium", "visit:utm_campaign", "visit:browser", "visit:os", "visit:device",
    "visit:isp",
]  # fmt: skip


def generate(data_dir: Path, events: int, threads: int) -> None:
    import duckdb

    from aggregator.lake import site_dir_name
    from aggregator.rollupbuild import refresh_rollups
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
        CAST(MAP {{}} AS MAP(VARCHAR, VARCHAR)) AS props,
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
    from aggregator.db import connect
    from aggregator.lake import Lake
    from aggregator.props import add_missing_column, props_column_done
    from aggregator.rollupbuild import refresh_rollups
    from aggregator.settings import Settings

    settings = Settings(data_dir=data_dir, duckdb_memory_limit="1500MB")
    lake = Lake(settings.lake_dir)
    if not props_column_done(lake):  # a lake generated before custom properties: as ingest migrates one
        con = connect(settings)
        print(f"  gave {add_missing_column(con, lake)} event files the props column", flush=True)
        con.close()
    t0 = time.perf_counter()
    built = refresh_rollups(settings, NOW, today=True)
    if built:
        print(f"  built {built} rollups missing for this code in {time.perf_counter() - t0:.1f}s", flush=True)


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over fork + exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _filters(kind: str) -> tuple[object, ...]:
    from aggregator.filters import Filter, Or

    return {
        "browser": (Filter("is", "visit:browser", ("Chrome",)),),
        "page": (Filter("contains", "event:page", ("/p/1",)),),
        "two": (Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("Windows",))),
        "or": (Or((Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("iOS",)))),),
    }.get(kind, ())  # goals and funnels: unfiltered


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def overview(data_dir: Path, runs: int, mode: str, baseline: bool = False) -> None:
    """Runs in its own process: prints one JSON line with the timings, CPU seconds and peak RSS."""
    from aggregator.query import Querier, QueryRequest
    from aggregator.settings import Settings

    # "stale": as the dashboards run it (ANALYTICS_ROLLUP_MAX_STALE=120), right after a batch.
    stale = 3600.0 if mode == "today stale" else 0.0
    settings = Settings(data_dir=data_dir, duckdb_memory_limit="1500MB", rollup_max_stale=stale)
    filters: tuple[object, ...] = ()
    date_range: str | tuple[dt.date, dt.date] = "all"
    kind = ""
    if mode in FILTERED:
        kind, days = FILTERED[mode]
        filters = _filters(kind)
        date_range = (LAST_DAY - dt.timedelta(days=days - 1), LAST_DAY)
    if baseline:
        import duckdb

        from bench import baseline as plain

        con = duckdb.connect(config={"memory_limit": "1500MB"})
        assert isinstance(date_range, tuple)
        by_name = {(f"Visit {g['page']}" if "page" in g else g["event"]): g for g in GOALS}

        def once() -> list[object]:
            if kind == "goals":
                plain.goals(con, data_dir, GOALS, *date_range)
            elif kind == "funnel":
                plain.funnel(con, data_dir, [by_name[n] for n in FUNNEL], *date_range)
            else:
                plain.overview(con, data_dir, kind, *date_range)
            return []
    elif kind in ("goals", "funnel"):
        q = Querier(settings)
        panel = QueryRequest(SITE, ("visitors", "events", "conversion_rate"), date_range, ("event:goal",))  # type: ignore[arg-type]

        def once() -> list[object]:
            if kind == "goals":
                q.run(panel, NOW)
            else:
                q.funnel(SITE, date_range, tuple(FUNNEL), NOW)  # type: ignore[arg-type]
            return []
    else:
        q = Querier(settings)
        requests = [
            QueryRequest(
                SITE, ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"),
                date_range, filters=filters,  # type: ignore[arg-type]
            ),
            QueryRequest(SITE, ("visitors", "pageviews"), date_range, ("time:day",), filters),  # type: ignore[arg-type]
            *[QueryRequest(SITE, ("visitors",), date_range, (p,), filters, limit=10) for p in PANELS],  # type: ignore[arg-type]
            QueryRequest(
                SITE, ("visitors", "time_on_page", "scroll_depth"), date_range, ("event:page",), filters, limit=10,  # type: ignore[arg-type]
            ),
        ]  # fmt: skip
        if kind == "page":  # views per visit means nothing under a page filter (refused, as by Plausible)
            requests[0] = QueryRequest(SITE, ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration"),
                                       date_range, filters=filters)  # type: ignore[arg-type]  # fmt: skip

        def once() -> list[object]:
            return q.run_many(requests, NOW)  # type: ignore[return-value]

    times, cpus = [], []
    results: list[object] = []
    for _ in range(runs):
        c0, t0 = _cpu(), time.perf_counter()
        results = once()
        times.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    out: dict[str, object] = {
        "median_s": statistics.median(times[1:] or times),
        "min_s": min(times),
        "cold_s": times[0],
        "cold_cpu_s": cpus[0],
        "warm_cpu_s": statistics.median(cpus[1:] or cpus),
        "rss_mb": _peak_rss_mb(),
    }
    if results:
        out |= {"raw_days": results[1].raw_days, "rollup_days": results[1].rollup_days}  # type: ignore[attr-defined]
    print(json.dumps(out))


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
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        overview(args.measure, args.runs, args.mode, args.baseline)
        return 0
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        data_dir = args.dir / f"n{size}"
        # The goals first: the rollup builds each day's conversions files for the goals in force.
        data_dir.mkdir(parents=True, exist_ok=True)
        write_site_config(data_dir)
        if not (data_dir / "lake" / "rollups").is_dir():
            print(f"generating {size:,} events ...", flush=True)
            generate(data_dir, size, args.threads)
        refresh_rollups_today(data_dir)
        if any(m in FILTERED for m in args.modes.split(",")):
            from bench.baseline import prepare

            took = prepare(data_dir)
            if took:
                print(f"  built the baseline's sessions table in {took:.1f}s (not timed)", flush=True)
        result = {}
        for mode in args.modes.split(","):
            sides = ("ours", "baseline") if mode in FILTERED else ("ours",)
            samples: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
            for _ in range(args.repeats):
                for side in sides:  # alternated, so both see the same machine
                    with _batch_landed(data_dir, mode):
                        cmd = [sys.executable, __file__, "--measure", str(data_dir), "--runs", str(args.runs)]
                        cmd += ["--mode", mode] + (["--baseline"] if side == "baseline" else [])
                        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    samples[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
            result[mode] = {side: _summary(samples[side]) for side in sides}
            for side in sides:
                m = result[mode][side]
                lo, hi = m["cold_range"]
                print(
                    f"  {size:>12,} events, {mode:>15} {side:>8}: cold median {m['cold_s'] * 1000:7.1f} ms "
                    f"({lo * 1000:.0f}-{hi * 1000:.0f} over {args.repeats} processes, {m['cold_cpu_s']:.2f} CPU s), "
                    f"warm median {m['median_s'] * 1000:7.1f} ms ({m['warm_cpu_s']:.2f} CPU s), "
                    f"peak RSS {m['rss_mb']:.0f} MB",
                    flush=True,
                )
            if "baseline" in result[mode]:
                b, o = result[mode]["baseline"], result[mode]["ours"]
                print(
                    f"  {'':>12}         {mode:>15}    ratio: baseline / ours = {b['cold_s'] / o['cold_s']:.1f}x cold, "
                    f"{b['median_s'] / o['median_s']:.1f}x warm (CPU: {b['cold_cpu_s'] / o['cold_cpu_s']:.1f}x, "
                    f"{b['warm_cpu_s'] / o['warm_cpu_s']:.1f}x)",
                    flush=True,
                )
        rows.append((size, result))
    modes = args.modes.split(",")
    print(
        "\n| events (90 days) | mode | ours: cold / warm | Plausible-style baseline: cold / warm | ratio | peak RSS |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for size, r in rows:
        for mode in modes:
            o = r[mode]["ours"]
            cells = f"{o['cold_s'] * 1000:.0f} / {o['median_s'] * 1000:.0f} ms"
            if "baseline" in r[mode]:
                b = r[mode]["baseline"]
                base = f"{b['cold_s'] * 1000:.0f} / {b['median_s'] * 1000:.0f} ms"
                ratio = f"{b['cold_s'] / o['cold_s']:.1f}x / {b['median_s'] / o['median_s']:.1f}x"
            else:
                base = ratio = "—"
            print(f"| {size:,} | {mode} | {cells} | {base} | {ratio} | {o['rss_mb']:.0f} MB |")
    return 0


def _summary(samples: list[dict[str, float]]) -> dict[str, object]:
    colds = [m["cold_s"] for m in samples]
    return {
        "cold_s": statistics.median(colds),
        "cold_range": (min(colds), max(colds)),
        "median_s": statistics.median(m["median_s"] for m in samples),
        "cold_cpu_s": statistics.median(m["cold_cpu_s"] for m in samples),
        "warm_cpu_s": statistics.median(m["warm_cpu_s"] for m in samples),
        "rss_mb": max(m["rss_mb"] for m in samples),
    }


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
