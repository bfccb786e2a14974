"""`make run`: the whole product on one machine, with embedded defaults.

Starts the collector, continuous ingest, the dashboards and a small demo site
that embeds the beacon; on first start seeds 30 days of demo traffic (site
``demo.onecloud.example``, marked as demo data) and creates an admin login.
Ctrl-C stops everything cleanly (the collector seals its spool segment, ingest
finishes its batch).

Lives outside the three packages on purpose: it is the only piece that knows
all of them, and the package boundaries stay intact.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import http.server
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collector.schema import Event

ROOT = Path(__file__).resolve().parents[2]
DEMO_SITE = "demo.onecloud.example"
DEMO_DAYS = 30


def _py() -> str:
    """This interpreter as a command to type in another terminal: `.venv/bin/python` when it is the project's."""
    try:
        return str(Path(sys.executable).relative_to(ROOT))
    except ValueError:
        return sys.executable


def _say(msg: str) -> None:
    print(f"stack: {msg}", flush=True)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANALYTICS_DATA_DIR", str(ROOT / "var"))
    sites = env.get("ANALYTICS_SITES", DEMO_SITE)
    if DEMO_SITE not in sites.split(","):
        sites += "," + DEMO_SITE
    env["ANALYTICS_SITES"] = sites
    # The demo site is served from 127.0.0.1: let the beacon report it (local only). This also makes the
    # collector's /opt-out page link back to the demo site's real address (http://127.0.0.1:<demo port>/#…)
    # when it is opened from the demo site, instead of https://demo.onecloud.example/, which does not resolve.
    env.setdefault("ANALYTICS_ALLOW_LOCALHOST", "1")
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"stack: {what} failed (exit {proc.returncode})")
    _say(f"{what}: done in {time.monotonic() - started:.1f} s")
    return proc.stdout


def site_config(env: dict[str, str]) -> None:
    """The site configuration file, written on a first start (as the collector would): the demo site's goals."""
    from collector.settings import Settings
    from collector.siteconfig import ensure, seed_config

    settings = Settings.from_env(env)
    ensure(settings.site_config_path, seed_config(settings.sites, settings.custom_events))


# Conversions of the demo site's goals (collector/data/demo-sites.json), per 100 visitors:
# (weight, [(event name, page, props)]) with None as the name of a page view. Each step is
# reached by a share of the visitors who reached the one before (drop-off, for the funnels).
_JOURNEYS: list[tuple[int, list[tuple[str | None, str, dict[str, str]]]]] = [
    (30, [(None, "/pricing", {}), (None, "/order", {}), ("Order", "/order", {"plan": "*plan"}),
          (None, "/order/thanks", {})]),
    (15, [(None, "/contact", {}), ("Contact", "/contact", {"method": "*method"}), (None, "/contact/thanks", {})]),
    (12, [(None, "/", {}), ("Newsletter Signup", "/", {}), (None, "/newsletter/thanks", {})]),
    (10, [(None, "/products", {}), ("Information Request", "/products", {"topic": "*topic"})]),
    (12, [(None, "/careers", {}), (None, "/careers/*job", {}),
          ("Job Application", "/careers/*job", {"position": "*position"}), (None, "/careers/*job/applied", {})]),
    (12, [(None, "/contact", {}), ("Outbound Link: Click", "/contact", {"url": "https://example.org/partners?ref=demo"})]),
    (9, [(None, "/products", {}), ("File Download", "/products", {"url": "https://demo.onecloud.example/downloads/datasheet.pdf"})]),
]  # fmt: skip
_CHOICES = {
    "plan": ["Starter", "Business", "Business", "Enterprise"],
    "method": ["form", "email", "phone"],
    "topic": ["Cloud PBX", "SIP trunking", "Contact centre"],
    "job": ["support-engineer", "sales-manager"],
}


def goal_traffic(events: list[Event], per_day: int, seed_: int) -> list[Event]:
    """Visitors who convert: each follows one journey, dropping out at each step with some chance.

    Built on real-looking visitors of the generated traffic (their browser, OS, ISP, source), as
    spool records, with the property values the collector would store (collector.props).
    """
    from collector.props import scrub_prop

    rng = random.Random(seed_)
    firsts: dict[dt.date, list[Event]] = {}
    for e in events:
        if e.name == "pageview":
            firsts.setdefault(dt.datetime.fromtimestamp(e.ts, dt.UTC).date(), []).append(e)
    out: list[Event] = []
    for day, pool in sorted(firsts.items()):
        for _ in range(per_day):
            base = rng.choice(pool)
            journey = rng.choices([j for _, j in _JOURNEYS], [w for w, _ in _JOURNEYS])[0]
            picked = {k: rng.choice(v) for k, v in _CHOICES.items()}
            picked["position"] = picked["job"].replace("-", " ").capitalize()  # as the job's page sends it
            t, key = base.ts + rng.randint(60, 3600), rng.getrandbits(64)
            if dt.datetime.fromtimestamp(t, dt.UTC).date() != day:
                continue  # the day key of a visitor is per UTC day
            for i, (name, path, props) in enumerate(journey):
                if i and rng.random() < 0.25:
                    break  # dropped out before this step
                path = path.replace("*job", picked["job"])
                raw = {k: picked[v[1:]] if v.startswith("*") else v for k, v in props.items()}
                stored = tuple(sorted((k, scrub_prop(k, v, name or "pageview")) for k, v in raw.items()))
                out.append(dataclasses.replace(
                    base, ts=t, name=name or "pageview", path=path, day_key=key, props=stored,
                    referrer_source=base.referrer_source if i == 0 else None,
                    referrer_host=base.referrer_host if i == 0 else None,
                    referrer_path=base.referrer_path if i == 0 else None,
                    channel=base.channel if i == 0 else "Direct", engaged_ms=None, scroll_depth=None,
                ))  # fmt: skip
                t += rng.randint(5, 240)
    return out


def seed(env: dict[str, str]) -> None:
    """30 days of realistic demo traffic, once: spool segments, then a real ingest."""
    data_dir = Path(env["ANALYTICS_DATA_DIR"])
    marker = data_dir / "DEMO-DATA.txt"
    if marker.exists():
        return
    from aggregator.synth import Traffic, generate, write_segments

    today = dt.datetime.now(dt.UTC).date()
    traffic = Traffic(
        start=today - dt.timedelta(days=DEMO_DAYS),
        days=DEMO_DAYS,
        visitors_per_day={DEMO_SITE: 120},
        seed=int(time.time()),
    )
    events = generate(traffic)
    events += goal_traffic(events, per_day=40, seed_=traffic.seed)
    events.sort(key=lambda e: (e.ts, e.site, e.day_key))
    write_segments(events, data_dir / "spool" / "sealed", prefix="demo")
    _say(f"seeded {len(events):,} demo events over {DEMO_DAYS} days for {DEMO_SITE}")
    # The real nightly batch: ingest, compaction, rollups, purge, and yesterday's reports.
    _run(["aggregator", "nightly", "--no-mail"], env, "nightly batch over the demo traffic")
    marker.write_text(
        f"Synthetic demo traffic for {DEMO_SITE}, {DEMO_DAYS} days before {today}, written by `make run`.\n"
        "It is not real visitor data. Delete the data directory to start empty.\n"
    )


def admin_login(env: dict[str, str]) -> str:
    listed = _run(["dashboards", "users", "list"], env, "user list")
    if any(line.split("\t")[0] == "admin" for line in listed.splitlines()):
        return f"admin (password as printed on first start; a new user: {_py()} -m dashboards users add NAME --admin)"
    out = _run(["dashboards", "users", "add", "admin", "--admin"], env, "admin login")
    password = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("password:")), "?")
    return f"admin / {password}"


def serve_demo_site(port: int, collector_url: str) -> http.server.ThreadingHTTPServer:
    site_dir = Path(__file__).resolve().parent / "demo-site"
    # One layout (with the beacon's script tag), one small fragment per page.
    layout = (site_dir / "_layout.html.tmpl").read_text().replace("COLLECTOR", collector_url)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            # Clean URLs (/order/thanks is order-thanks.html); the .html names work too.
            name = "index.html" if path in ("", "/") else path.strip("/").replace("/", "-")
            page = site_dir / (name if name.endswith(".html") else name + ".html")
            if page.suffix != ".html" or not page.is_file() or page.parent != site_dir:
                self.send_error(404)
                return
            fragment = page.read_text().replace("COLLECTOR", collector_url)
            title, _, content = fragment.partition("\n")
            title = title.removeprefix("<!-- title: ").removesuffix(" -->")
            body = layout.replace("{title}", title).replace("{body}", content.rstrip("\n")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # a request log would hold visitors' addresses

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _wait(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    # One client for every try: httpx builds a TLS context per client (~25 ms of CPU, taken from the
    # starting process), even for a plain-HTTP URL.
    with httpx.Client(timeout=1) as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"stack: {name} exited with {proc.returncode}")
            try:
                client.get(url)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
    raise SystemExit(f"stack: {name} did not start at {url}")


def main() -> int:
    env = _env()
    collector_port = int(env.get("ANALYTICS_PORT", "8000"))
    dashboards_port = int(env.get("ANALYTICS_DASHBOARDS_PORT", "8001"))
    demo_port = int(env.get("ANALYTICS_DEMO_PORT", "8002"))
    Path(env["ANALYTICS_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    site_config(env)
    seed(env)
    login = admin_login(env)

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        # Own session: Ctrl-C reaches only this launcher, which then stops the
        # children in order instead of all of them at once.
        proc = subprocess.Popen([sys.executable, "-m", *args], env=env, cwd=ROOT, start_new_session=True)
        procs.append((name, proc))
        return proc

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    demo = None
    try:
        collector = start("collector", ["collector", "serve", "--port", str(collector_port)])
        collector_url = f"http://127.0.0.1:{collector_port}"
        _wait(collector_url + "/healthz", collector, "collector")
        start("ingest", ["aggregator", "ingest", "--follow"])
        dashboards = start("dashboards", ["dashboards", "serve", "--port", str(dashboards_port)])
        _wait(f"http://127.0.0.1:{dashboards_port}/login", dashboards, "dashboards")
        demo = serve_demo_site(demo_port, collector_url)
        print(
            "\n"
            f"  Dashboards   http://127.0.0.1:{dashboards_port}/   login {login}\n"
            f"  Demo site    http://127.0.0.1:{demo_port}/   (browse it: your visits appear within seconds)\n"
            f"  Collector    {collector_url}/privacy   what a visit records · /metrics\n"
            f"  Opt out      http://127.0.0.1:{demo_port}/privacy.html   (links to /opt-out and back)\n"
            f"  Data         {env['ANALYTICS_DATA_DIR']}   (30 days of demo traffic for {DEMO_SITE})\n"
            f"  Report       {env['ANALYTICS_DATA_DIR']}/reports/{DEMO_SITE}/"
            f"   ({_py()} -m aggregator nightly --no-mail)\n"
            "\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stopping.wait(1):
            for name, proc in procs:
                if proc.poll() is not None:
                    _say(f"{name} exited with {proc.returncode}; stopping the rest")
                    stopping.set()
        return 0 if all(p.poll() in (None, 0) for _, p in procs) else 1
    finally:
        if demo is not None:
            demo.shutdown()
        for name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            _say(f"{name} stopped")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
