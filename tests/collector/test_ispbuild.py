"""The CSV → mmdb builder: real files in tmp_path, read back with the real maxminddb reader."""

from __future__ import annotations

import gzip
import ipaddress
from pathlib import Path

import maxminddb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ispbuild import Row, build, range_to_cidrs, resolve_overlaps
from collector.orgnames import normalise_org

# Unsorted on purpose, with adjacent, nested, equally wide and partly overlapping
# ranges, IPv6 next to IPv4, and one malformed row.
FIXTURE_V4 = """\
8.8.8.0,8.8.8.255,15169,Google LLC
1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
1.0.1.0,1.0.1.255,13335,"Cloudflare, Inc."
1.0.2.0,1.0.3.255,64496,Adjacent Net LLC
100.64.0.0,100.127.255.255,64497,Wide Org
100.65.0.0,100.65.255.255,64498,NARROWBAND NETWORKS GMBH
100.65.2.0,100.65.2.255,64499,First Same Width
100.65.2.0,100.65.2.255,64500,Later Same Width
20.0.0.0,20.0.0.255,64501,Part A
20.0.0.128,20.0.1.255,64502,Part B
not,an,address,row
9.9.9.9,9.9.9.0,1,backwards range
"""
FIXTURE_V6 = """\
2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC
2a00:1450::,2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC
2a00:1450:4001::,2a00:1450:4001:ffff:ffff:ffff:ffff:ffff,64510,Inner Six Ltd
"""


def write_fixture(tmp_path: Path) -> list[Path]:
    v4 = tmp_path / "asn-ipv4.csv"
    v4.write_text(FIXTURE_V4)
    v6 = tmp_path / "asn-ipv6.csv.gz"
    v6.write_bytes(gzip.compress(FIXTURE_V6.encode()))
    return [v4, v6]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    out = tmp_path / "out" / "asn.mmdb"
    build(write_fixture(tmp_path), out, build_epoch=1781722800)
    return out


def asn(reader: maxminddb.Reader, ip: str) -> tuple[int, str] | None:
    rec = reader.get(ip)
    if rec is None:
        return None
    assert isinstance(rec, dict)
    # What the reader shows: the database keeps the registry's spelling, the reader normalises.
    return rec["autonomous_system_number"], normalise_org(rec["autonomous_system_organization"])


def test_lookups_in_built_database(built: Path) -> None:
    with maxminddb.open_database(str(built)) as r:
        meta = r.metadata()
        assert meta.database_type == "GeoLite2-ASN"
        assert meta.ip_version == 6 and meta.build_epoch == 1781722800
        assert "DB-IP.com, RouteViews, NRO (CC BY 4.0)" in meta.description["en"]
        assert asn(r, "8.8.8.8") == (15169, "Google")
        assert r.get("8.8.8.8")["autonomous_system_organization"] == "Google LLC"  # type: ignore[index]
        assert asn(r, "::ffff:8.8.8.8") == (15169, "Google")  # dual-stack form, aliased like GeoLite2
        assert asn(r, "1.0.1.255") == (13335, "Cloudflare")
        assert asn(r, "1.0.2.0") == (64496, "Adjacent Net")  # adjacent, different: its own range
        assert asn(r, "1.0.4.0") is None
        assert asn(r, "2001:4860:4860::8888") == (15169, "Google")
        assert asn(r, "2a00:1450:4001::1") == (64510, "Inner Six")  # nested IPv6: narrower wins
        assert asn(r, "2a00:1450:4002::1") == (15169, "Google")
        assert asn(r, "127.0.0.1") is None and asn(r, "::1") is None


def test_overlaps_narrowest_then_latest_wins(built: Path) -> None:
    with maxminddb.open_database(str(built)) as r:
        assert asn(r, "100.64.0.1") == (64497, "Wide Org")
        assert asn(r, "100.66.0.1") == (64497, "Wide Org")  # the wide range resumes after the nested one
        assert asn(r, "100.65.0.1") == (64498, "Narrowband Networks")
        assert asn(r, "100.65.2.7") == (64500, "Later Same Width")  # equal width: later row wins
        assert asn(r, "20.0.0.127") == (64501, "Part A")
        assert asn(r, "20.0.0.200") == (64501, "Part A")  # partial overlap: A (256) is narrower than B (384)
        assert asn(r, "20.0.1.200") == (64502, "Part B")


def test_build_counts_and_is_deterministic(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path)
    a, b = tmp_path / "a.mmdb", tmp_path / "b.mmdb"
    stats = build(paths, a, build_epoch=1)
    build(paths, b, build_epoch=1)
    assert a.read_bytes() == b.read_bytes()
    assert stats.rows == 13 and stats.skipped == 2
    # 1.0.0.0/24 + 1.0.1.0/24 merge (-1); the nested v4 ranges split into 5 pieces (+1),
    # the partial overlap stays 2, the nested v6 range splits its parent (+1).
    assert stats.ranges == 14
    assert not list(tmp_path.glob("*.tmp"))


def test_progress_is_reported(tmp_path: Path) -> None:
    messages: list[str] = []
    build(write_fixture(tmp_path), tmp_path / "p.mmdb", progress=messages.append)
    assert any(m.startswith("read 13 ranges") for m in messages)
    assert messages[-1].startswith("done:")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Google LLC", "Google"),
        ("Cloudflare, Inc.", "Cloudflare"),
        ("Amazon.com, Inc.", "Amazon.com"),
        ("Comcast Cable Communications, LLC", "Comcast Cable Communications"),
        ("Deutsche Telekom AG", "Deutsche Telekom"),
        ("NTT DOCOMO, INC.", "NTT Docomo"),
        ("SHINHAN LIFE INSURANCE CO.,LTD.", "Shinhan Life Insurance"),
        ("THE CATHOLIC UNIVERSITY OF KOREA", "The Catholic University of Korea"),
        ("OVH SAS", "OVH"),
        ("Gtelecom Pty Ltd", "Gtelecom"),
        ("eBay Inc", "eBay"),
        ("Telefonica de Espana S.A.U.", "Telefonica de Espana"),
        ("LLC", "LLC"),  # nothing left to show: keep the name
        ("", ""),
    ],
)
def test_normalise_org(raw: str, shown: str) -> None:
    assert normalise_org(raw) == shown
    assert normalise_org(shown) == shown


@given(st.integers(0, 2**20), st.integers(0, 2**20))
def test_range_to_cidrs_matches_ipaddress(a: int, b: int) -> None:
    first, last = min(a, b), max(a, b)
    base = int(ipaddress.IPv6Address("2001:db8::"))
    ours = [(net - base, plen) for net, plen in range_to_cidrs(base + first, base + last)]
    expected = [
        (int(n.network_address) - base, n.prefixlen)
        for n in ipaddress.summarize_address_range(
            ipaddress.IPv6Address(base + first), ipaddress.IPv6Address(base + last)
        )
    ]
    assert ours == expected


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 15), st.integers(1, 4)), max_size=12))
def test_resolve_overlaps_matches_brute_force(spec: list[tuple[int, int, int]]) -> None:
    rows = [Row(first, min(first + width, 63), asn, f"org{asn}") for first, width, asn in spec]
    expected: dict[int, int] = {}
    for addr in range(64):
        covering = [(r.last - r.first, -i) for i, r in enumerate(rows) if r.first <= addr <= r.last]
        if covering:
            expected[addr] = rows[-min(covering)[1]].asn
    got: dict[int, int] = {}
    resolved = resolve_overlaps(rows)
    for r in resolved:
        for addr in range(r.first, r.last + 1):
            assert addr not in got
            got[addr] = r.asn
    assert got == expected
    assert all(a.last < b.first for a, b in zip(resolved, resolved[1:], strict=False))
