"""Malformed, oversized, wrongly typed and hostile payloads against the collector app (in this process)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.app import create_app
from collector.settings import Settings
from tests.asgi import client_of_app
from tests.conftest import CHROME_UA

SITE = "www.onecloud.example"
GOOD = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE, "r": None}


class Errors(logging.Handler):
    """Every log record at ERROR or above while the module's app runs (a traceback would be one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[Errors]:
    handler = Errors()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, isp_db: Path, errors: Errors) -> Iterator[httpx.Client]:
    """The collector app in this process (tests/asgi.py): the same app `collector serve` runs."""
    data_dir = tmp_path_factory.mktemp("input") / "data"
    app = create_app(Settings(data_dir=data_dir, isp_db=isp_db, sites=(SITE,)))
    with client_of_app(app) as c:
        c.headers["User-Agent"] = CHROME_UA
        yield c


def post(client: httpx.Client, body: bytes, ctype: str = "text/plain", **headers: str) -> httpx.Response:
    return client.post("/api/event", content=body, headers={"Content-Type": ctype, **headers})


def js(obj: object) -> bytes:
    return json.dumps(obj).encode()


CASES: list[tuple[str, bytes, str, int, str | None]] = [
    ("good", js(GOOD), "text/plain", 202, None),
    ("good json type", js(GOOD), "application/json; charset=utf-8", 202, None),
    ("long key names", js({"name": "pageview", "url": f"https://{SITE}/a", "domain": SITE}), "text/plain", 202, None),
    ("not json", b"{nope", "text/plain", 400, "body"),
    ("empty body", b"", "text/plain", 400, "body"),
    ("json array", b"[1,2]", "text/plain", 400, "body"),
    ("json string", b'"pageview"', "text/plain", 400, "body"),
    ("invalid utf-8", b'{"n":"\xff\xfe"}', "text/plain", 400, "body"),
    ("missing name", js({"u": f"https://{SITE}/", "d": SITE}), "text/plain", 400, "n"),
    ("name not string", js({**GOOD, "n": 5}), "text/plain", 400, "n"),
    ("name too long", js({**GOOD, "n": "x" * 500}), "text/plain", 400, "n"),
    ("missing url", js({"n": "pageview", "d": SITE}), "text/plain", 400, "u"),
    ("relative url", js({**GOOD, "u": "/pricing"}), "text/plain", 400, "u"),
    ("javascript url", js({**GOOD, "u": "javascript:alert(1)"}), "text/plain", 400, "u"),
    ("url too long", js({**GOOD, "u": f"https://{SITE}/" + "a" * 3000}), "text/plain", 400, "u"),
    ("missing domain", js({"n": "pageview", "u": f"https://{SITE}/"}), "text/plain", 400, "d"),
    ("domain is list", js({**GOOD, "d": [SITE]}), "text/plain", 400, "d"),
    ("referrer is number", js({**GOOD, "r": 42}), "text/plain", 400, "r"),
    ("engagement without e", js({**GOOD, "n": "engagement"}), "text/plain", 400, "e"),
    ("engagement e string", js({**GOOD, "n": "engagement", "e": "100"}), "text/plain", 400, "e"),
    ("engagement negative", js({**GOOD, "n": "engagement", "e": -5}), "text/plain", 400, "e"),
    ("scroll depth bool", js({**GOOD, "n": "engagement", "e": 5, "sd": True}), "text/plain", 400, "sd"),
    ("form content type", b"n=pageview", "application/x-www-form-urlencoded", 415, "content-type"),
    ("xml content type", b"<x/>", "application/xml", 415, "content-type"),
    ("no content type", js(GOOD), "", 415, "content-type"),
    ("oversized", js({**GOOD, "p": {"x": "y" * 20000}}), "text/plain", 413, "body"),
    ("deep nesting", b"[" * 3000 + b"]" * 3000, "text/plain", 400, "body"),
]


@pytest.mark.parametrize(("label", "body", "ctype", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_table(
    client: httpx.Client, label: str, body: bytes, ctype: str, status: int, field: str | None
) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    r = client.post("/api/event", content=body, headers=headers)
    assert r.status_code == status, (label, r.text)
    if field is not None:
        assert r.json()["field"] == field
        # The message never echoes the input back.
        assert "alert" not in r.text and "yyyy" not in r.text


def test_oversized_body_is_not_read_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(1000):
            yield b"x" * 1024

    r = client.post("/api/event", content=chunks(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"Sec-GPC": "1"}, GOOD, "opt_out"),
        ({"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, GOOD, "bot"),
        ({}, {**GOOD, "d": "evil.example"}, "unknown_site"),
        ({}, {**GOOD, "n": "Signup with secret"}, "unknown_event"),
        ({}, {**GOOD, "u": "http://localhost:3000/"}, "localhost"),
        ({}, {**GOOD, "u": f"https://[{SITE}/pricing"}, "unparsable_url"),  # an unclosed IPv6 bracket
        ({}, {**GOOD, "u": "http://[::1/"}, "unparsable_url"),
    ],
)
def test_deliberate_drops_are_202_with_reason(
    client: httpx.Client, headers: dict[str, str], body: object, reason: str
) -> None:
    r = client.post("/api/event", content=js(body), headers={"Content-Type": "text/plain", **headers})
    assert r.status_code == 202
    assert r.headers["x-drop-reason"] == reason


def test_dnt_is_ignored_unless_configured(client: httpx.Client) -> None:
    r = post(client, js(GOOD), DNT="1")
    assert r.status_code == 202 and "x-drop-reason" not in r.headers


def test_drops_and_rejections_are_counted(client: httpx.Client) -> None:
    post(client, b"{nope")
    post(client, js(GOOD), **{"Sec-GPC": "1"})
    post(client, js({**GOOD, "u": "https://[::1/"}))
    text = client.get("/metrics").text
    assert 'analytics_events_dropped_total{reason="opt_out"}' in text
    assert 'analytics_events_rejected_total{reason="bad_request"}' in text
    assert "analytics_events_received_total" in text
    assert "analytics_spool_commit_seconds_bucket" in text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and line[0] != "#"}
    assert values['analytics_events_dropped_total{reason="opt_out"}'] >= 1
    assert values['analytics_events_rejected_total{reason="bad_request"}'] >= 1
    assert values['analytics_events_dropped_total{reason="unparsable_url"}'] >= 1
    # Every reason is on /metrics from the start (zeros, not gaps): the documented set (docs/collector.md).
    dropped = {k.split('"')[1] for k in values if k.startswith("analytics_events_dropped_total{")}
    assert dropped == {"bot", "opt_out", "unknown_site", "unknown_event", "localhost", "unparsable_url"}
    rejected = {k.split('"')[1] for k in values if k.startswith("analytics_events_rejected_total{")}
    assert rejected == {"bad_request", "too_large", "unsupported_media_type", "unavailable", "internal_error"}
    kinds = {k.split('"')[1] for k in values if k.startswith("analytics_bots_dropped_total{")}
    assert kinds == {"automation", "crawler", "client", "junk", "datacenter"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=10,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "n": st.sampled_from(["pageview", "engagement", "404", "x"]) | json_values,
        "u": st.sampled_from([f"https://{SITE}/a?b=c#d", "http://[::1", "https://%zz/", "file:///etc"]) | json_values,
        "d": st.sampled_from([SITE, f"x,{SITE}", ""]) | json_values,
        "r": st.sampled_from(["https://www.google.com/", "://", None]) | json_values,
        "e": json_values,
        "sd": json_values,
        "h": json_values,
        "p": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=payloads, raw=st.binary(max_size=64), use_raw=st.booleans(), ua=st.text(max_size=80) | st.just(CHROME_UA))
def test_fuzz_never_5xx(client: httpx.Client, body: dict[str, object], raw: bytes, use_raw: bool, ua: str) -> None:
    content = raw if use_raw else json.dumps(body, allow_nan=True).encode()
    # Any bytes a client can put in a header line (non-ASCII included), minus control characters.
    ua_bytes = bytes(b for b in ua.encode("utf-8", "replace") if b >= 0x20 and b != 0x7F).strip()
    r = client.post("/api/event", content=content, headers={b"Content-Type": b"text/plain", b"User-Agent": ua_bytes})
    assert r.status_code in (202, 400, 413), r.text


def test_server_still_serving_after_fuzz(client: httpx.Client, errors: Errors) -> None:
    assert client.get("/healthz").status_code == 200
    assert post(client, js(GOOD)).status_code == 202
    assert not errors.records, [r.getMessage() for r in errors.records]
