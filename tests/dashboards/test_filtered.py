"""Filtered traffic end to end: a collector drops bots and opt-outs, ingest keeps the counts, the overview shows them.

A real ``collector serve`` gets human, crawler, automation, opt-out, localhost and
unknown-site events; stopping it (SIGTERM) writes its drop counts to the spool;
the real ``aggregator ingest`` puts them in the lake; ``aggregator.drops.dropped``
and the logged-in overview of a real ``dashboards serve`` show the same numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from aggregator.drops import dropped
from aggregator.settings import Settings as AggregatorSettings
from tests import web
from tests.conftest import CHROME_UA, running_collector, wait_for_records
from tests.dashboards.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    DEMO,
    XSS_SITE,
    base_env,
    login,
    run,
    running_dashboards,
    users_only,
)

SITE = XSS_SITE  # www.onecloud.example
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
)
ATTACKER_SITE = "attacker-chosen.example"


def _send(client: httpx.Client, n: int, ua: str, reason: str | None, site: str = SITE, **extra: str) -> None:
    url = extra.pop("url", f"https://{site}/pricing")
    for i in range(n):
        headers = {"User-Agent": ua, "X-Forwarded-For": f"81.2.69.{10 + i}", **extra}
        r = client.post("/api/event", json={"n": "pageview", "u": url, "d": site}, headers=headers)
        assert r.status_code == 202 and r.headers.get("x-drop-reason") == reason, (r.status_code, r.headers)


def test_drops_are_counted_per_site_and_reason_from_collector_to_overview(
    tmp_path: Path, collector_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    env = {**collector_env, "ANALYTICS_SITES": f"{DEMO},{SITE}"}
    with running_collector(data, env) as collector, web.client(base_url=collector.url, timeout=10) as client:
        _send(client, 3, CHROME_UA, None)
        _send(client, 4, GOOGLEBOT, "bot")
        _send(client, 2, HEADLESS, "bot")
        _send(client, 1, GOOGLEBOT, "bot", site=DEMO)
        _send(client, 2, CHROME_UA, "opt_out", **{"Sec-GPC": "1", "Origin": f"https://{SITE}"})
        _send(client, 1, CHROME_UA, "opt_out", **{"Sec-GPC": "1"})  # no Origin: no site to count it for
        _send(client, 1, CHROME_UA, "localhost", url="http://localhost:8080/")
        _send(client, 2, CHROME_UA, "unknown_site", site=ATTACKER_SITE)
        wait_for_records(data, 3)
    # Stopped with SIGTERM: the worker wrote what it counted.
    drop_files = sorted((data / "spool" / "sealed").glob("*.drops"))
    assert len(drop_files) == 1
    assert ATTACKER_SITE.encode() not in drop_files[0].read_bytes()

    aenv = base_env(data)
    report = json.loads(run(["-m", "aggregator", "ingest"], aenv).splitlines()[-1])
    assert report["events"] == 3 and report["dropped"] == 13 and report["quarantined"] == 0
    assert not list((data / "spool" / "sealed").glob("*.drops"))

    today = dt.datetime.now(dt.UTC).date()
    settings = AggregatorSettings(data_dir=data, duckdb_threads=2)
    d = dropped(settings, SITE, today, today)
    assert {r: n for r, n in d.reasons.items() if n} == {"bot": 6, "opt_out": 2, "localhost": 1}
    assert {k: n for k, n in d.bot_kinds.items() if n} == {"crawler": 4, "automation": 2}
    assert d.total == 9
    assert dropped(settings, DEMO, today, today).reasons["bot"] == 1
    assert dropped(settings, SITE, today - dt.timedelta(days=7), today - dt.timedelta(days=1)).total == 0
    # Without a known site: the opt-out with no Origin and the unknown site's events, never its name.
    nosite = dropped(settings, None, today, today)
    assert {r: n for r, n in nosite.reasons.items() if n} == {"opt_out": 1, "unknown_site": 2}
    for path in (data / "lake" / "drops").rglob("*.parquet"):
        assert ATTACKER_SITE not in json.dumps(pq.read_table(path).to_pylist(), default=str)

    users_only(data)
    with running_dashboards(data) as dash, login(dash.url, ADMIN, ADMIN_PASSWORD) as c:
        html = c.get(f"/sites/{SITE}", params={"period": "day"}).text
        line = _filtered_line(html)
        assert line.startswith("Filtered out today, not counted as visits: 9 events")
        assert "bots 6: crawlers 4, automated browsers 2; opted out 2; local test pages 1" in line
        three = {"period": "custom", "from": (today - dt.timedelta(days=2)).isoformat(), "to": today.isoformat()}
        assert _filtered_line(c.get(f"/sites/{SITE}", params=three).text).startswith(
            "Filtered out in this period, not counted as visits: 9 events"
        )
        # "Last 7 days" ends yesterday: today's drops are not in it.
        week = _filtered_line(c.get(f"/sites/{SITE}", params={"period": "7d"}).text)
        assert week == "Filtered out in this period, not counted as visits: none."
        assert _filtered_line(c.get(f"/sites/{DEMO}", params={"period": "day"}).text).endswith(
            "1 events (bots 1: crawlers 1)."
        )


def _filtered_line(html: str) -> str:
    m = re.search(r'<p class="filtered small" id="filtered">(.*?)</p>', html, re.S)
    assert m, "no Filtered line on the overview"
    return " ".join(re.sub(r"<[^>]+>", "", m.group(1)).split())
