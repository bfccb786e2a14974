"""The data-centre signal: hosting networks (collector/data/hosting-asns.txt) and the UA's claims."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.devices import NO_HINTS, Hints, client_hints
from collector.isp import IspDatabase, hosting_asns
from collector.payload import parse_payload
from collector.pipeline import Dropped, Hit, Pipeline
from collector.salts import DayKeys, FileSaltStore
from collector.settings import Settings
from collector.useragent import UAParser
from tests import web
from tests.conftest import CHROME_UA, Server, running_collector

SITE = "www.onecloud.example"
BODY = f'{{"n":"pageview","u":"https://{SITE}/","d":"{SITE}"}}'
AWS, ISP, RELAY = "3.5.140.7", "81.2.69.7", "104.28.3.7"
FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_HINTS = client_hints(b'"Windows"', b"?0")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for cidr, asn, org in (
        ("3.5.140.0/22", 16509, "Amazon.com, Inc."),
        ("81.2.69.0/24", 20712, "Andrews & Arnold Ltd"),
        # Cloudflare carries iCloud Private Relay and WARP: people, not scripts.
        ("104.28.0.0/16", 13335, "Cloudflare, Inc."),
    ):
        writer.insert_network(IPSet([cidr]), {"autonomous_system_number": asn, "autonomous_system_organization": org})
    path = tmp_path_factory.mktemp("dc") / "asn.mmdb"
    writer.to_db_file(str(path))
    return path


def pipeline(tmp_path: Path, db: Path, mode: str) -> Pipeline:
    settings = Settings(data_dir=tmp_path, sites=(SITE,), isp_db=db, datacenter_traffic=mode)
    return Pipeline(settings, UAParser(), IspDatabase(db), DayKeys(FileSaltStore(tmp_path / "salts")))


def verdict(p: Pipeline, ip: str, ua: str, hints: Hints = NO_HINTS) -> str:
    try:
        p.build(Hit(payload=parse_payload(BODY.encode()), ip=ip, ua=ua, ts=1_795_000_000, hints=hints))
    except Dropped as drop:
        return f"{drop.reason}/{drop.kind}"
    return "kept"


def test_the_list_has_clouds_and_not_the_relays_people_use() -> None:
    asns = hosting_asns()
    assert {16509, 14618, 396982, 8075, 14061, 16276, 24940, 45102, 37963} <= asns  # AWS, GCP, Azure, DO, OVH...
    # Cloudflare and Akamai (iCloud Private Relay, WARP), Fastly, Apple, Zscaler, Google's own network.
    assert not {13335, 36183, 20940, 54113, 714, 53813, 15169} & asns


def test_suspicious_mode_drops_a_browser_ua_without_hints_from_a_cloud(tmp_path: Path, db: Path) -> None:
    p = pipeline(tmp_path, db, "suspicious")
    assert verdict(p, AWS, CHROME_UA) == "bot/datacenter"
    # A real Chrome sends client hints: a person on a cloud desktop or a VPN is kept.
    assert verdict(p, AWS, CHROME_UA, CHROME_HINTS) == "kept"
    # Firefox and Safari send no hints at all: no signal, kept.
    assert verdict(p, AWS, FIREFOX_UA) == "kept"
    # The same Chrome without hints from an ISP or from a relay: kept.
    assert verdict(p, ISP, CHROME_UA) == "kept"
    assert verdict(p, RELAY, CHROME_UA) == "kept"


def test_drop_and_keep_modes(tmp_path: Path, db: Path) -> None:
    assert verdict(pipeline(tmp_path, db, "drop"), AWS, FIREFOX_UA) == "bot/datacenter"
    assert verdict(pipeline(tmp_path, db, "drop"), RELAY, FIREFOX_UA) == "kept"
    assert verdict(pipeline(tmp_path, db, "keep"), AWS, CHROME_UA) == "kept"


def test_a_ua_bot_is_dropped_for_its_ua_first(tmp_path: Path, db: Path) -> None:
    assert verdict(pipeline(tmp_path, db, "suspicious"), AWS, "curl/8.5.0") == "bot/client"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, db: Path) -> Iterator[Server]:
    env = {"ANALYTICS_ISP_DB": str(db), "ANALYTICS_SITES": SITE, "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32"}
    with running_collector(tmp_path_factory.mktemp("dc-server") / "data", env) as s:
        yield s


def test_endpoint_reads_hints_and_counts_bots_by_kind(server: Server) -> None:
    with web.client(base_url=server.url, timeout=10) as client:

        def post(ip: str, ua: str, **headers: str) -> httpx.Response:
            return client.post(
                "/api/event",
                content=BODY,
                headers={"Content-Type": "text/plain", "User-Agent": ua, "X-Forwarded-For": ip, **headers},
            )

        assert post(AWS, CHROME_UA).headers.get("x-drop-reason") == "bot"
        hinted = post(AWS, CHROME_UA, **{"Sec-CH-UA-Platform": '"Windows"', "Sec-CH-UA-Mobile": "?0"})
        assert hinted.status_code == 202 and "x-drop-reason" not in hinted.headers
        assert post(ISP, "python-requests/2.32.3").headers.get("x-drop-reason") == "bot"
        metrics = client.get("/metrics").text
    assert 'analytics_bots_dropped_total{kind="datacenter"} 1.0' in metrics
    assert 'analytics_bots_dropped_total{kind="client"} 1.0' in metrics
    assert 'analytics_bots_dropped_total{kind="junk"} 0.0' in metrics
    assert 'analytics_events_dropped_total{reason="bot"} 2.0' in metrics
    assert "Windows" not in metrics  # no hint value reaches a label
