"""The pipeline with its real parts: UA parser, ISP database, salts on disk."""

from __future__ import annotations

import dataclasses
import gc
import json
import tracemalloc
from pathlib import Path

import pytest

from collector.isp import IspDatabase
from collector.payload import parse_payload
from collector.pipeline import Dropped, Hit, Pipeline
from collector.salts import DayKeys, FileSaltStore
from collector.schema import Event
from collector.settings import Settings
from collector.useragent import UAParser
from tests.conftest import CHROME_UA

SITE = "www.onecloud.example"
TS = 1_795_000_000


@pytest.fixture
def pipeline(tmp_path: Path, isp_db: Path) -> Pipeline:
    settings = Settings(data_dir=tmp_path, sites=(SITE,), isp_db=isp_db)
    return Pipeline(settings, UAParser(), IspDatabase(isp_db), DayKeys(FileSaltStore(tmp_path / "salts")))


def hit(body: str, ip: str | None = "8.8.8.8", ua: str = CHROME_UA) -> Hit:
    return Hit(payload=parse_payload(body.encode()), ip=ip, ua=ua, ts=TS)


def test_event_has_only_inventory_fields_and_no_raw_values(pipeline: Pipeline) -> None:
    ev = pipeline.build(
        hit(
            f'{{"n":"pageview","u":"https://{SITE}/a/jane@example.com?utm_source=x&t=1#f",'
            f'"d":"{SITE}","r":"https://www.bing.com/search?q=secret"}}'
        )
    )
    assert isinstance(ev, Event)
    record = dataclasses.asdict(ev)
    assert ev.path == "/a/:email" and ev.utm_source == "x" and ev.referrer_source == "x"
    assert ev.referrer_host == "bing.com" and ev.referrer_path == "/search"
    assert (ev.asn, ev.isp) == (15169, "Google")
    flat = repr(record)
    for raw in ("8.8.8.8", CHROME_UA, "jane@example.com", "secret", "t=1", "#f"):
        assert raw not in flat


def test_www_and_bare_site_names_match_the_allowlist(pipeline: Pipeline) -> None:
    ev = pipeline.build(hit(f'{{"n":"pageview","u":"https://{SITE}/","d":"onecloud.example"}}'))
    assert ev.site == SITE
    ev = pipeline.build(hit(f'{{"n":"pageview","u":"https://{SITE}/","d":"other.example,{SITE}"}}'))
    assert ev.site == SITE


@pytest.mark.parametrize(
    ("body", "ua", "reason"),
    [
        ('{"n":"pageview","u":"https://a.example/","d":"a.example"}', CHROME_UA, "unknown_site"),
        (f'{{"n":"Purchase 4711","u":"https://{SITE}/","d":"{SITE}"}}', CHROME_UA, "unknown_event"),
        (f'{{"n":"pageview","u":"http://localhost:8080/","d":"{SITE}"}}', CHROME_UA, "localhost"),
        (f'{{"n":"pageview","u":"file:///home/me/x.html","d":"{SITE}"}}', CHROME_UA, "localhost"),
        (f'{{"n":"pageview","u":"https://{SITE}/","d":"{SITE}"}}', "curl/8.5.0", "bot"),
    ],
)
def test_gate(pipeline: Pipeline, body: str, ua: str, reason: str) -> None:
    with pytest.raises(Dropped) as drop:
        pipeline.build(hit(body, ua=ua))
    assert drop.value.reason == reason


def test_hash_mode_keeps_the_route_not_the_fragment(pipeline: Pipeline) -> None:
    ev = pipeline.build(hit(f'{{"n":"pageview","u":"https://{SITE}/app#/orders/123456789?x=1","d":"{SITE}","h":1}}'))
    assert ev.path == "/orders/:id"
    ev = pipeline.build(hit(f'{{"n":"pageview","u":"https://{SITE}/app#/orders","d":"{SITE}"}}'))
    assert ev.path == "/app"


def test_same_visitor_same_key_unknown_address_still_counted(pipeline: Pipeline) -> None:
    body = f'{{"n":"pageview","u":"https://{SITE}/","d":"{SITE}"}}'
    assert pipeline.build(hit(body)).day_key == pipeline.build(hit(body)).day_key
    assert pipeline.build(hit(body)).day_key != pipeline.build(hit(body, ip="1.1.1.1")).day_key
    ev = pipeline.build(hit(body, ip="10.1.2.3"))
    assert ev.asn is None and ev.isp is None


@pytest.mark.slow
def test_page_and_referrer_caches_are_bounded_by_bytes(tmp_path: Path, isp_db: Path) -> None:
    # Page URLs and referrers are visitor-chosen strings of up to 2,048 characters: caches
    # bounded by entries only held 20,000 of each (here ~3 MB for 800 unique pairs: over the
    # assertion's bound by 2x; small enough that the loop under tracemalloc takes ~2 s, not 5-8).
    budget = 1 << 18
    settings = Settings(data_dir=tmp_path, sites=(SITE,), isp_db=isp_db, page_cache_bytes=budget)
    pipeline = Pipeline(settings, UAParser(), IspDatabase(isp_db), DayKeys(FileSaltStore(tmp_path / "salts")))
    pipeline.build(hit(f'{{"n":"pageview","u":"https://{SITE}/warm","d":"{SITE}"}}'))  # salts, parser
    long = "\u20ac" * 600
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(800):
            url, ref = f"https://{SITE}/{i}/{long}", f"https://elsewhere.example/{i}/{long}"
            pipeline.build(hit(json.dumps({"n": "pageview", "u": url, "d": SITE, "r": ref})))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Two caches within their budgets, plus what urllib's own urlsplit cache keeps (its last
    # 128 URLs and their parts: under 1 MB here).
    assert held < 2 * budget + (1 << 20), f"{held} bytes held for two {budget}-byte budgets"
