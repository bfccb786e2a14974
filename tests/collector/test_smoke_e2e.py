from __future__ import annotations

import time

from tests import web
from tests.conftest import CHROME_UA, Server, sealed_records


def test_pageview_end_to_end(collector: Server) -> None:
    body = {
        "n": "pageview",
        "u": "https://www.onecloud.example/pricing?utm_source=newsletter&utm_medium=email&email=a@b.c#frag",
        "d": "www.onecloud.example",
        "r": "https://www.google.com/search?q=onecloud",
    }
    r = web.post(
        collector.url + "/api/event",
        json=body,
        headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "8.8.8.8"},
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 5
    records: list[dict[str, object]] = []
    while time.monotonic() < deadline and not records:
        records = sealed_records(collector.data_dir)
        time.sleep(0.05)
    assert len(records) == 1
    rec = records[0]
    assert rec["site"] == "www.onecloud.example"
    assert rec["path"] == "/pricing"
    assert rec["utm_source"] == "newsletter"
    assert rec["channel"] == "Email"
    assert rec["referrer_host"] == "google.com"
    assert rec["browser"] == "Chrome" and rec["browser_version"] == "131"
    assert rec["os"] == "Windows" and rec["device"] == "desktop"
    assert rec["asn"] == 15169 and rec["isp"] == "Google"  # normalised for display
    assert rec["v"] == 2 and rec["props"] == {}
