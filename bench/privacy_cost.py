"""What the k-anonymity and differencing rules cost the web team in accuracy; run by hand.

    .venv/bin/python bench/privacy_cost.py [--sizes 1000000,10000000] [--dir /tmp/onecloud-privacy-cost]

Each lake is generated with long tails, as real sites have them (unlike the
query benchmark's uniform lake): log-uniform pages (5,000), referrer hosts
(2,000), AS numbers (400) and browser and OS versions, one site, 90 UTC days.
Every breakdown of the dashboards and the report is asked over 7, 30 and 90
days, unfiltered and under two filters, once with K = 5 and once with K = 1
(where nothing can be under K), through the query layer. A row of at least
100 visitors in the K = 1 answer that is missing or different in the K = 5
answer is an error the rules added; the table gives how many such rows there
are, how many the rules changed, and the share of their visitors lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

SITE = "www.onecloud.example"
DAYS = 90
LAST_DAY = dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)
DIMS = (
    "event:page", "visit:entry_page", "visit:exit_page", "visit:source", "visit:referrer", "visit:channel",
    "visit:browser", "visit:browser_version", "visit:os", "visit:os_version", "visit:device", "visit:isp",
    "visit:asn",
)  # fmt: skip


def generate(data_dir: Path, events: int) -> None:
    import duckdb

    from aggregator.lake import site_dir_name
    from aggregator.rollupbuild import refresh_rollups
    from aggregator.settings import Settings

    per_visitor = 4
    visitors = events // DAYS // per_visitor
    out = data_dir / "lake" / "events" / f"site={site_dir_name(SITE)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    first = LAST_DAY - dt.timedelta(days=DAYS - 1)

    def logu(seed: int, n: int) -> str:  # log-uniform index in [0, n): a long tail
        return f"CAST(floor(pow({n}, (hash(d, v, {seed}) % 1000000) / 1000000.0)) - 1 AS BIGINT)"

    con = duckdb.connect(config={"memory_limit": "4GB"})
    t0 = time.perf_counter()
    con.execute(f"""
    COPY (
      WITH v AS (
        SELECT d, v, CAST(hash(d, v, 1) >> 1 AS BIGINT) AS h,
               CAST(DATE '{first}' + CAST(d AS INTEGER) AS TIMESTAMP) + to_seconds(CAST(hash(d, v) % 86000 AS BIGINT))
                 AS t0,
               {logu(2, 2000)} AS ref, {logu(3, 400)} AS asn, {logu(4, 30)} AS bv, {logu(5, 12)} AS ov,
               ['Chrome', 'Chrome', 'Chrome', 'Safari', 'Safari', 'Edge', 'Firefox', 'Samsung Internet', 'Opera',
                'Chrome Mobile WebView', 'Brave', 'DuckDuckGo'][1 + CAST(floor(pow(13, (hash(d, v, 6) % 1000) / 1000.0))
                 AS INTEGER) - 1] AS browser,
               ['Windows', 'Windows', 'Android', 'Android', 'iOS', 'iOS', 'macOS', 'Linux', 'ChromeOS', 'HarmonyOS']
                 [1 + CAST(floor(pow(11, (hash(d, v, 7) % 1000) / 1000.0)) AS INTEGER) - 1] AS os
        FROM range({DAYS}) r1(d), range({visitors}) r2(v)
      )
      SELECT '{SITE}' AS site,
        least(t0 + to_seconds(CAST(i * (20 + h % 300) AS BIGINT)),
              date_trunc('day', t0) + INTERVAL '86399 seconds') AS ts,
        CASE WHEN i % 4 = 3 THEN 'engagement' WHEN (h + i) % 41 = 0 THEN 'File Download' ELSE 'pageview' END AS name,
        '/p/' || CAST(floor(pow(5000, (hash(d, v, i, 8) % 1000000) / 1000000.0)) - 1 AS VARCHAR) AS path,
        CASE WHEN h % 10 < 3 THEN NULL ELSE 'site' || ref || '.example' END AS referrer_source,
        CASE WHEN h % 10 < 3 THEN NULL ELSE 'site' || ref || '.example' END AS referrer_host,
        CASE WHEN h % 10 < 3 THEN NULL ELSE '/' END AS referrer_path,
        CASE WHEN h % 10 < 3 THEN 'Direct' WHEN ref < 3 THEN 'Organic Search' ELSE 'Referral' END AS channel,
        NULL::VARCHAR AS utm_source, NULL::VARCHAR AS utm_medium, NULL::VARCHAR AS utm_campaign,
        NULL::VARCHAR AS utm_content, NULL::VARCHAR AS utm_term,
        browser, CAST(131 - bv AS VARCHAR) AS browser_version, os, CAST(18 - ov AS VARCHAR) AS os_version,
        CASE WHEN os IN ('Android', 'iOS') THEN (CASE WHEN h % 9 = 0 THEN 'tablet' ELSE 'mobile' END) ELSE 'desktop'
          END AS device,
        CAST(64512 + asn AS INTEGER) AS asn, 'Network ' || CAST(asn AS VARCHAR) AS isp,
        NULL::VARCHAR AS network_domain,
        h AS day_key,
        CASE WHEN i % 4 = 3 THEN CAST(1000 + h % 120000 AS INTEGER) END AS engaged_ms,
        CASE WHEN i % 4 = 3 THEN CAST(h % 101 AS SMALLINT) END AS scroll_depth,
        strftime(CAST(ts AS DATE), '%Y-%m-%d') AS day
      FROM v, range({per_visitor}) r3(i)
    ) TO '{out}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, FILENAME_PATTERN 'cost_{{i}}')
    """)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = refresh_rollups(Settings(data_dir=data_dir, duckdb_memory_limit="1500MB"), NOW)
    print(
        f"  generated {events:,} events in {gen:.1f}s; {built} rollups in {time.perf_counter() - t0:.1f}s", flush=True
    )


def measure(data_dir: Path) -> list[tuple[str, int, int, int, int, float]]:
    from aggregator.filters import Filter
    from aggregator.query import OTHER, Querier, QueryRequest
    from aggregator.settings import Settings

    strict = Settings(data_dir=data_dir, duckdb_memory_limit="1500MB", k_anonymity=5)
    loose = dataclasses.replace(strict, k_anonymity=1)
    q5, q1 = Querier(strict), Querier(loose)
    out = []
    filters = {
        "unfiltered": (),
        "browser = Chrome": (Filter("is", "visit:browser", ("Chrome",)),),
        "device = mobile": (Filter("is", "visit:device", ("mobile",)),),
    }
    for label, fs in filters.items():
        for days in (7, 30, 90):
            rng = (LAST_DAY - dt.timedelta(days=days - 1), LAST_DAY)
            requests = [QueryRequest(SITE, ("visitors",), rng, (d,), fs) for d in DIMS]
            big = changed = rows1 = rows5 = 0
            lost = total = 0.0
            for a, b in zip(q1.run_many(requests, NOW), q5.run_many(requests, NOW), strict=True):
                got = {r.dimensions: r.metrics[0] for r in b.rows if OTHER not in r.dimensions}
                rows1 += len(a.rows)
                rows5 += len(got)
                for r in a.rows:
                    if r.metrics[0] >= 100:
                        big += 1
                        total += r.metrics[0]
                        if got.get(r.dimensions) != r.metrics[0]:
                            changed += 1
                            lost += r.metrics[0]
            out.append((f"{label}, {days} d", rows1, rows5, big, changed, lost / total * 100 if total else 0.0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/onecloud-privacy-cost"))
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {dt.date.today()}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        data_dir = args.dir / f"n{size}"
        if not (data_dir / "lake" / "rollups").is_dir():
            print(f"generating {size:,} events ...", flush=True)
            generate(data_dir, size)
        print(f"\n{size:,} events, {len(DIMS)} breakdowns each:\n")
        print("| query | rows at K=1 | rows at K=5 | rows >= 100 visitors | of them changed | their visitors lost |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, rows1, rows5, big, changed, lost in measure(data_dir):
            print(f"| {label} | {rows1:,} | {rows5:,} | {big:,} | {changed:,} | {lost:.2f} % |", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
