"""Collector throughput and latency against a bare Starlette endpoint, in one run.

    .venv/bin/python bench/collector_bench.py [--seconds 10] [--rounds 3]

Needs `wrk` (Debian package). For each round it measures, one after the other
on the same machine: the bare endpoint (reads the body, answers 202), the full
collector with realistic traffic (UAs of the labelled corpus drawn by real
traffic weight with a 5 % tail of exotic strings and bots, client hints where a
Chromium browser sends them, 5,000 public IPv4/IPv6 addresses through a
trusted-proxy header, durable group-committed spool), and the collector with a
unique UA on every request. Then p99 latency at half the
realistic peak rate, and the collector's peak RSS. Medians and ratios are
printed as a Markdown table (for bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from uas import corpus_sample  # noqa: E402

CLIENT_ADDRESSES = 5000

SITE = "www.onecloud.example"
PAGES = [
    "/",
    "/pricing",
    "/products/cloud-pbx",
    "/products/sip-trunk",
    "/blog/2026/privacy",
    "/contact",
    "/about",
    "/support/faq",
    "/careers",
    "/blog/2026/latency",
    "/docs/api",
    "/products/contact-center",
]
REFERRERS = [
    None,
    None,
    None,
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://www.linkedin.com/feed/",
    "https://news.ycombinator.com/",
    "https://partner.example/links",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def public_ips(n: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        if rng.random() < 0.8:
            ip = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        else:
            ip = str(ipaddress.IPv6Address((0x2001_0000 + rng.getrandbits(16) << 96) | rng.getrandbits(96)))
        if ipaddress.ip_address(ip).is_global:
            out.append(ip)
    return out


def client_hint_headers(ua: str) -> tuple[str, str]:
    """(Sec-CH-UA-Platform, Sec-CH-UA-Mobile) as a Chromium browser with this UA sends them; ("", "") otherwise."""
    if "Chrome/" not in ua or "CriOS" in ua or "Firefox" in ua:
        return "", ""
    for token, name in (("Android", "Android"), ("CrOS", "Chrome OS"), ("Windows", "Windows"),
                        ("Macintosh", "macOS"), ("Linux", "Linux")):  # fmt: skip
        if token in ua:
            return f'"{name}"', "?1" if "Mobile" in ua else "?0"
    return "", ""


def lua_script(n: int, unique_ua: bool, delay_ms: float, path: Path) -> None:
    rng = random.Random(11)
    uas = corpus_sample(n, seed=5)
    ips = public_ips(CLIENT_ADDRESSES, rng)
    reqs = []
    for i in range(n):
        page = rng.choices(PAGES, weights=[1 / (k + 1) for k in range(len(PAGES))])[0]
        body: dict[str, object] = {"n": "pageview", "u": f"https://{SITE}{page}", "d": SITE, "r": rng.choice(REFERRERS)}
        if rng.random() < 0.3:
            body.update({"n": "engagement", "e": rng.randint(500, 120000), "sd": rng.randint(0, 100)})
        reqs.append((json.dumps(body), uas[i], rng.choice(ips), *client_hint_headers(uas[i])))

    def q(s: str) -> str:
        return "[==[" + s + "]==]"

    lines = ["local reqs = {"]
    for body, ua, ip, ch_platform, ch_mobile in reqs:
        lines.append(f"  {{{q(body)}, {q(ua)}, {q(ip)}, {q(ch_platform)}, {q(ch_mobile)}}},")
    lines.append("}")
    lines.append(f"""
local i = 0
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
request = function()
  i = (i % #reqs) + 1
  counter = counter + 1
  local r = reqs[i]
  local ua = r[2]
  if {str(unique_ua).lower()} then ua = ua .. " Build/" .. counter .. "." .. math.random(1, 1000000000) end
  local headers = {{["User-Agent"] = ua, ["X-Forwarded-For"] = r[3], ["Content-Type"] = "text/plain"}}
  if r[4] ~= "" then
    headers["Sec-CH-UA-Platform"] = r[4]
    headers["Sec-CH-UA-Mobile"] = r[5]
  end
  return wrk.format(nil, "/api/event", headers, r[1])
end
delay = function() return {delay_ms} end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000.0, latency:percentile(99) / 1000.0, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
""")
    path.write_text("\n".join(lines))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads (the spool writer included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: Path, seconds: int, connections: int, pid: int | None = None) -> dict[str, float]:
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+) (\d+)", out)
    if not m:
        raise RuntimeError(out)
    reqs, dur_us = int(m.group(1)), int(m.group(2))
    cpu_us = (cpu_seconds(pid) - cpu0) * 1e6 / max(reqs, 1) if pid else 0.0
    return {
        "rps": reqs / (dur_us / 1e6),
        "p50_ms": float(m.group(3)),
        "p99_ms": float(m.group(4)),
        "bad_status": int(m.group(5)),
        "socket_errors": int(m.group(6)),
        "cpu_us": cpu_us,
    }


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.p = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        for _ in range(300):
            try:
                httpx.post(self.url + "/api/event", content=b"{}", headers={"Content-Type": "text/plain"}, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"{cmd} did not start")

    def rss_mb(self) -> float:
        # uvicorn with one worker serves from this very process
        total = 0
        for pid in [self.p.pid, *children(self.p.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"VmHWM:\s+(\d+) kB", status)
            total = max(total, int(m.group(1)) if m else 0)
        return total / 1024

    def stop(self) -> None:
        os.killpg(self.p.pid, signal.SIGTERM)
        self.p.wait(timeout=30)


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="collector-bench-"))
    realistic, unique = tmp / "realistic.lua", tmp / "unique.lua"
    lua_script(20000, False, 0, realistic)
    lua_script(20000, True, 0, unique)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    results: dict[str, list[dict[str, float]]] = {"bare": [], "realistic": [], "unique": []}
    peak_rss = 0.0
    for rnd in range(args.rounds):
        port = free_port()
        bare = Proc(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.bare_app:create_app",
                "--factory",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            port,
        )
        wrk(bare.url, realistic, 2, args.connections)  # warm-up
        results["bare"].append(wrk(bare.url, realistic, args.seconds, args.connections, bare.p.pid))
        bare.stop()

        port = free_port()
        cenv = {
            **env,
            "ANALYTICS_DATA_DIR": str(tmp / f"data{rnd}"),
            "ANALYTICS_SITES": SITE,
            "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
            "ANALYTICS_LOG_LEVEL": "warning",
        }
        col = Proc([sys.executable, "-m", "collector", "serve", "--port", str(port)], cenv, port)
        wrk(col.url, realistic, 2, args.connections)
        results["realistic"].append(wrk(col.url, realistic, args.seconds, args.connections, col.p.pid))
        # Unseen UAs exercise matchers the realistic mix never touched; the Rust
        # resolver's lazy automata warm up on them first (as in production).
        wrk(col.url, unique, 4, args.connections)
        results["unique"].append(wrk(col.url, unique, args.seconds, args.connections, col.p.pid))
        peak_rss = max(peak_rss, col.rss_mb())
        col.stop()
        shutil.rmtree(tmp / f"data{rnd}", ignore_errors=True)
        last = {k: v[-1]["rps"] for k, v in results.items()}
        print(
            f"round {rnd + 1}: bare {last['bare']:.0f}/s, collector {last['realistic']:.0f}/s,"
            f" unique-UA {last['unique']:.0f}/s; same-round ratios"
            f" {last['realistic'] / last['bare']:.2f} and {last['unique'] / last['bare']:.2f}",
            flush=True,
        )

    med = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["cpu_us"] for r in v) for k, v in results.items()}
    # p99 at half the realistic peak: 'delay' paces each connection.
    rate = med["realistic"] / 2
    conns = 16
    paced = tmp / "paced.lua"
    lua_script(20000, False, 1000.0 * conns / rate, paced)
    port = free_port()
    cenv = {
        **env,
        "ANALYTICS_DATA_DIR": str(tmp / "paced"),
        "ANALYTICS_SITES": SITE,
        "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
        "ANALYTICS_LOG_LEVEL": "warning",
    }
    col = Proc([sys.executable, "-m", "collector", "serve", "--port", str(port)], cenv, port)
    wrk(col.url, paced, 2, conns)
    half = [wrk(col.url, paced, args.seconds, conns) for _ in range(args.rounds)]
    peak_rss = max(peak_rss, col.rss_mb())
    col.stop()
    shutil.rmtree(tmp, ignore_errors=True)

    p99 = statistics.median(h["p99_ms"] for h in half)
    achieved = statistics.median(h["rps"] for h in half)
    errors = sum(r["bad_status"] + r["socket_errors"] for v in results.values() for r in v)
    print()
    print(
        f"Machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.rounds} rounds x {args.seconds}s, wrk 1 thread {args.connections} connections"
    )
    print()
    print("| measurement | median | ratio to bare | server CPU per request (ratio) | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| bare Starlette endpoint | {med['bare']:.0f} req/s | 1.00 | {cpu['bare']:.0f} µs | |")
    for key, label, target in (
        ("realistic", "collector, realistic traffic", "≥ 0.85"),
        ("unique", "collector, every UA unique", "≥ 0.50"),
    ):
        print(
            f"| {label} | {med[key]:.0f} req/s | {med[key] / med['bare']:.2f} | {cpu[key]:.0f} µs "
            f"({cpu['bare'] / cpu[key]:.2f}) | {target} |"
        )
    print(f"| p99 latency at half peak ({achieved:.0f} req/s) | {p99:.1f} ms | | | < 25 ms |")
    print(f"| collector peak RSS | {peak_rss:.0f} MB | | | < 200 MB |")
    print(f"| non-2xx or socket errors | {errors} | | | 0 |")


def _gen(kind: str, out: str) -> None:
    lua_script(20000, kind == "unique", 0, Path(out))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--lua":
        _gen(sys.argv[2], sys.argv[3])
        raise SystemExit(0)
    main()
