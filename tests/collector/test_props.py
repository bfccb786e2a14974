"""Custom properties: Plausible's tracker formats in, allowlisted keys and scrubbed values out, drops counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from collector.isp import IspDatabase
from collector.payload import PayloadError, parse_payload
from collector.pipeline import Hit, Pipeline
from collector.props import read_props, scrub_prop
from collector.salts import DayKeys, FileSaltStore
from collector.schema import MAX_PROPS, Event
from collector.settings import Settings
from collector.siteconfig import SiteConfig, from_dict
from collector.useragent import UAParser
from tests.conftest import CHROME_UA

SITE = "www.onecloud.example"
OTHER = "shop.onecloud.example"
CONFIG = from_dict(
    {
        "sites": [
            {
                "domain": SITE,
                "custom_events": ["Signup", "File Download", "Outbound Link: Click"],
                "prop_keys": ["plan", "url", "path", "Größe"],
            },  # fmt: skip
            {"domain": OTHER, "custom_events": ["Signup"], "prop_keys": ["cart"]},
        ]
    }
)


@pytest.fixture
def built(tmp_path: Path, isp_db: Path) -> tuple[Pipeline, list[str]]:
    drops: list[str] = []
    settings = Settings(data_dir=tmp_path, isp_db=isp_db)
    keys = DayKeys(FileSaltStore(tmp_path / "salts"))
    return Pipeline(settings, UAParser(), IspDatabase(isp_db), keys, lambda: CONFIG, drops.append), drops


def event(built: tuple[Pipeline, list[str]], name: str, props: Any, site: str = SITE, key: str = "p") -> Event:
    body = json.dumps({"n": name, "u": f"https://{site}/x", "d": site, key: props})
    return built[0].build(Hit(payload=parse_payload(body.encode()), ip="8.8.8.8", ua=CHROME_UA, ts=1_795_000_000))


def test_plausible_tracker_shapes_are_read() -> None:
    # Its current tracker sends an object; older ones a JSON string, under m/meta too.
    assert read_props({"plan": "Pro", "n": 3, "ok": True, "f": 1.5, "no": False}) == (
        (("plan", "Pro"), ("n", "3"), ("ok", "true"), ("f", "1.5"), ("no", "false")),
        [],
    )
    assert read_props('{"plan": "Pro"}') == ((("plan", "Pro"),), [])
    for key in ("m", "meta", "p", "props"):
        body = json.dumps({"n": "Signup", "u": f"https://{SITE}/", "d": SITE, key: {"plan": "Pro"}})
        assert parse_payload(body.encode()).props == (("plan", "Pro"),)


def test_what_is_no_property_is_left_out_and_counted() -> None:
    props, dropped = read_props({"a": {"x": 1}, "b": [1], "c": None, "d": "  ", " ": "x", "e": "ok"})
    assert props == (("e", "ok"),)
    assert sorted(dropped) == ["empty", "empty", "empty", "not_scalar", "not_scalar"]
    many = {f"k{i}": "v" for i in range(MAX_PROPS + 5)}
    props, dropped = read_props(many)
    assert len(props) == MAX_PROPS and dropped == ["too_many"] * 5
    assert read_props([1, 2]) == ((), ["not_scalar"]) and read_props("[1]") == ((), ["not_scalar"])
    assert read_props("{nope") == ((), ["not_scalar"]) and read_props(None) == ((), [])


def test_overlong_properties_are_a_400_like_plausible() -> None:
    for props in ({"k" * 301: "v"}, {"k": "v" * 2001}):
        body = json.dumps({"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": props})
        with pytest.raises(PayloadError) as err:
            parse_payload(body.encode())
        assert err.value.field == "p" and "v" * 50 not in str(err.value)  # the value is never echoed


def test_only_the_sites_keys_are_kept(built: tuple[Pipeline, list[str]]) -> None:
    ev = event(built, "Signup", {"plan": "Pro", "cart": "3", "email": "x", "Gr%C3%B6%C3%9Fe": "L"})
    assert ev.props == (("Größe", "L"), ("plan", "Pro"))  # sorted; a key normalised like any visitor string
    assert sorted(built[1]) == ["unknown_key", "unknown_key"]
    built[1].clear()
    ev = event(built, "Signup", {"plan": "Pro", "cart": "3"}, site=OTHER)
    assert ev.props == (("cart", "3"),) and built[1] == ["unknown_key"]
    # Pageviews may carry properties too (Plausible's pageview props).
    assert event(built, "pageview", {"plan": "Pro"}).props == (("plan", "Pro"),)
    assert event(built, "pageview", None).props == () and event(built, "pageview", {}).props == ()


def test_one_key_in_two_spellings_counts_once(built: tuple[Pipeline, list[str]]) -> None:
    ev = event(built, "Signup", {"plan": "Pro", "ｐｌａｎ": "Free"})
    assert ev.props == (("plan", "Pro"),) and built[1] == ["duplicate"]


@pytest.mark.parametrize(
    ("event_name", "url", "stored"),
    [
        ("File Download", "https://www.onecloud.example/files/2026/datasheet.pdf?token=abc#p2", "datasheet.pdf"),
        ("File Download", "/downloads/Price%20List.xlsx", "Price List.xlsx"),
        ("File Download", "https://x.example/f/jane.doe@example.com.pdf", ":email"),
        ("File Download", "https://x.example/d/550e8400-e29b-41d4-a716-446655440000", ":uuid"),
        ("Outbound Link: Click", "https://partner.example.org/l/j@x.com?r=9f86d081884c7d65", "partner.example.org"),
        ("Outbound Link: Click", "https://WWW.Example.COM:8443/a", "www.example.com"),
        ("Outbound Link: Click", "http://203.0.113.9/a", ":ip"),
        ("Outbound Link: Click", "https%3A%2F%2Fexample.net%2Fx", "example.net"),
        # For any other event a URL keeps host and scrubbed path, never its query or fragment.
        ("Signup", "https://example.net/a/jane@example.com/b?utm_source=x&t=secret#frag", "example.net/a/:email/b"),
    ],
)  # fmt: skip
def test_the_url_of_downloads_and_outbound_links(
    built: tuple[Pipeline, list[str]], event_name: str, url: str, stored: str
) -> None:
    assert event(built, event_name, {"url": url}).props == (("url", stored),)


def _encoded(text: str, rounds: int) -> str:
    for _ in range(rounds):
        text = quote(text, safe="")
    return text


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("Business", "Business"),
        ("  Pro  ", "Pro"),
        ("jane.doe@example.com", ":email"),
        ("call +1 415 555 0100", ":phone"),
        ("Pro%2540example.com", ":email"),  # decoded until stable before anything looks
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", ":email"),
        ("/account/550e8400-e29b-41d4-a716-446655440000/settings?x=1", "/account/:uuid/settings"),
        ("%2Fblog%2Fpost%3Ftoken%3Dsecret", "/blog/post"),  # a path: scrubbed per segment, no query
        ("x" * 300, "x" * 200),
        (_encoded("Pro plan", 8), ":token"),  # still decoding after the last round
    ],
)
def test_values_are_scrubbed_like_paths(value: str, stored: str) -> None:
    assert scrub_prop("plan", value, "Signup") == stored


def test_a_value_scrubbed_to_nothing_is_dropped(built: tuple[Pipeline, list[str]]) -> None:
    ev = event(built, "File Download", {"url": "https://example.org/", "plan": "%00%1b"})
    assert ev.props == () and built[1] == ["empty", "empty"]


def test_props_follow_the_configuration_in_force(tmp_path: Path, isp_db: Path) -> None:
    holder = [SiteConfig(())]
    settings = Settings(data_dir=tmp_path, isp_db=isp_db)
    keys = DayKeys(FileSaltStore(tmp_path / "salts"))
    pipeline = Pipeline(settings, UAParser(), IspDatabase(isp_db), keys, lambda: holder[0])
    body = json.dumps({"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": {"plan": "Pro"}}).encode()
    assert pipeline.site_for(SITE) is None
    holder[0] = CONFIG
    ev = pipeline.build(Hit(payload=parse_payload(body), ip="8.8.8.8", ua=CHROME_UA, ts=1_795_000_000))
    assert ev.name == "Signup" and ev.props == (("plan", "Pro"),)
