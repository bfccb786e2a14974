"""Drop counts at rest hold the documented fields only, and nothing the dropped requests carried.

Requests dropped for every reason, each carrying a known address, user agent,
path, event name or domain, go through a real collector, which writes its
counts when stopped; the real ``aggregator ingest`` puts them in the lake.
The spool's count file and the lake's Parquet must have exactly the fields
docs/privacy.md lists for the table (and aggregator/drops.py declares), and no
byte or value of any of them may hold one of the planted strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from aggregator.drops import COLUMNS
from collector.schema import DROP_COUNT_REASONS, DROP_COUNTS_SUFFIX
from tests import web
from tests.conftest import CHROME_UA, ROOT, running_collector
from tests.dashboards.conftest import base_env, run

SITE = "www.onecloud.example"
IP = "203.0.113.77"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) SecretUaMarker42"
SECRETS = (
    IP,
    "SecretUaMarker42",
    "jane.doe.secret-site.example",
    "secretpath",
    "Secret Event",
    "jane.doe@example.org",
    "querysecret",
)


def _requests() -> list[tuple[dict[str, object], dict[str, str], str]]:
    url = f"https://{SITE}/secretpath/jane.doe@example.org?t=querysecret"
    page = {"n": "pageview", "u": url, "d": SITE}
    headers = {"User-Agent": CHROME_UA, "X-Forwarded-For": IP, "Content-Type": "text/plain"}
    return [
        (page, {**headers, "User-Agent": BOT_UA}, "bot"),
        (page, {**headers, "Sec-GPC": "1", "Origin": f"https://{SITE}"}, "opt_out"),
        ({**page, "d": "jane.doe.secret-site.example"}, headers, "unknown_site"),
        ({**page, "n": "Secret Event jane.doe@example.org"}, headers, "unknown_event"),
        ({**page, "u": "http://localhost/secretpath?t=querysecret"}, headers, "localhost"),
        ({**page, "u": "https://[secretpath/jane.doe@example.org"}, headers, "unparsable_url"),
    ]


def _documented_fields() -> list[str]:
    text = (ROOT / "docs" / "privacy.md").read_text()
    table = text.split("<!-- drops:start -->", 1)[1].split("<!-- drops:end -->", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", table, re.M)


def test_drop_counts_hold_the_documented_fields_and_no_request_data(
    tmp_path: Path, collector_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    sent = _requests()
    assert {reason for *_, reason in sent} == set(DROP_COUNT_REASONS)  # every reason is exercised
    with running_collector(data, {**collector_env, "ANALYTICS_LOG_LEVEL": "debug"}) as server:
        with web.client(base_url=server.url) as client:
            for body, headers, reason in sent:
                r = client.post("/api/event", content=json.dumps(body).encode(), headers=headers)
                assert r.status_code == 202 and r.headers.get("x-drop-reason") == reason, (body, r.headers)
    spool = sorted((data / "spool" / "sealed").glob("*" + DROP_COUNTS_SUFFIX))
    assert len(spool) == 1
    spooled = [json.loads(line) for line in spool[0].read_bytes().splitlines()]
    assert sum(int(r["events"]) for r in spooled) == len(sent)
    spool_text = spool[0].read_text()

    run(["-m", "aggregator", "ingest"], base_env(data))
    lake = sorted((data / "lake" / "drops").rglob("*.parquet"))
    assert len(lake) == 2  # the site's day and the day of drops with no known site

    documented = _documented_fields()
    assert documented == [name for name, _ in COLUMNS]
    assert all(set(r) == {"v", *documented} for r in spooled)
    for path in lake:
        table = pq.read_table(path)
        assert table.column_names == documented, path
        spool_text += path.read_bytes().decode("utf-8", "replace")
        spool_text += json.dumps(table.to_pylist(), default=str)
    # The collector's own output is a file the product writes too.
    spool_text += server.log()
    found = [s for s in SECRETS if s.lower() in spool_text.lower()]
    assert not found, found
