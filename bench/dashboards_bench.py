"""Dashboards latency at 10M events over 90 days (issue 6: overview <= 0.5 s, each panel <= 0.2 s); run by hand.

    .venv/bin/python bench/dashboards_bench.py [--events 10000000] [--runs 5] [--dir /tmp/onecloud-dash-bench]

The lake is made by the aggregator's own benchmark generator (bench/query_bench.py:
DuckDB SQL straight to Parquet, one site, 90 UTC days, 2.5M day keys at 10M events,
closed days rolled up by ``refresh_rollups``). Then a real ``dashboards serve``
process answers, through a logged-in HTTP client on loopback:

* the overview page, fully rendered (KPIs with comparison, series, 7 panels,
  realtime): first request ("cold") and the median of ``--runs`` more;
* each panel's CSV export (one panel's data request on its own);
* the two-dimension tabs (browser and OS versions, internal pair dimensions of the rollups);
* the same with a filter (``browser=Chrome``), which the rollups cannot answer.

Prints a Markdown table to paste into bench/RESULTS.md, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.dashboards.conftest import csrf_token  # noqa: E402

PANELS = ("pages", "sources", "browsers", "os", "devices", "isps", "events")


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("query_bench", ROOT / "bench" / "query_bench.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _timed(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/onecloud-dash-bench"))
    args = ap.parse_args()
    qb = _generator()
    data_dir: Path = args.dir / f"n{args.events}"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}",
        flush=True,
    )
    if not (data_dir / "lake" / "rollups").is_dir():
        print(f"generating {args.events:,} events over 90 days ...", flush=True)
        qb.generate(data_dir, args.events, os.cpu_count() or 2)  # type: ignore[attr-defined]
    qb.refresh_rollups_today(data_dir)  # type: ignore[attr-defined]
    site: str = qb.SITE  # type: ignore[attr-defined]
    last = qb.LAST_DAY  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({"ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SITES": site})
    subprocess.run(
        [sys.executable, "-m", "dashboards", "users", "add", "bench", "--admin", "--password-stdin"],
        cwd=ROOT,
        env=env,
        input="bench-password-1\n",
        text=True,
        capture_output=True,
    )
    port = free_port()
    # cwd: DuckDB spills to ./.tmp; keep that next to the lake, not in the repository.
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboards", "serve", "--port", str(port)],
        cwd=data_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        rows = []
        with httpx.Client(base_url=url, timeout=120) as c:
            token = csrf_token(c.get("/login").text)
            c.post("/login", data={"name": "bench", "password": "bench-password-1", "csrf_token": token})
            start = last.fromordinal(last.toordinal() - 29)
            first = last.fromordinal(last.toordinal() - 89)
            views = {
                "last 30 days": {"period": "custom", "from": str(start), "to": str(last)},
                "all 90 days": {"period": "custom", "from": str(first), "to": str(last)},
                "all 90 days, browser and OS version tabs": {
                    "period": "custom",
                    "from": str(first),
                    "to": str(last),
                    "tab_browsers": "version",
                    "tab_os": "version",
                },
                "30 days, filter browser=Chrome": {
                    "period": "custom",
                    "from": str(start),
                    "to": str(last),
                    "browser": "Chrome",
                },
            }
            for name, params in views.items():
                cold = _timed(c, f"/sites/{site}", params)
                warm = statistics.median(_timed(c, f"/sites/{site}", params) for _ in range(args.runs))
                panels = {
                    p: statistics.median(
                        _timed(c, f"/sites/{site}/export/{p}.csv", params) for _ in range(max(1, args.runs // 2))
                    )
                    for p in PANELS
                }
                worst = max(panels, key=lambda p: panels[p])
                rows.append((name, cold, warm, panels[worst], worst))
                print(
                    f"  {name}: overview cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms; slowest panel "
                    f"{worst} {panels[worst] * 1000:.0f} ms; all panels (ms): "
                    + ", ".join(f"{p} {v * 1000:.0f}" for p, v in panels.items()),
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        f"\n| view ({args.events:,} events, 90 days) | overview page cold | overview warm (median) "
        "| slowest panel export |"
    )
    print("| --- | ---: | ---: | ---: |")
    for name, cold, warm, worst_s, worst in rows:
        print(f"| {name} | {cold * 1000:.0f} ms | {warm * 1000:.0f} ms | {worst_s * 1000:.0f} ms ({worst}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
