"""The ISP reader: the bundled database, operator databases by type, reload — and the same answers end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from collector.isp import IspDatabase, UnsupportedDatabase, bundled_database, bundled_manifest
from collector.ispbuild import build
from tests import web
from tests.conftest import CHROME_UA, ROOT, free_port, running_collector, sealed_records, small_tmpfs

# The acceptance answers of issue 3, from the database shipped in the package.
ACCEPTANCE = {
    "8.8.8.8": (15169, "Google"),
    "1.1.1.1": (13335, "Cloudflare"),
    "2001:4860:4860::8888": (15169, "Google"),
    "10.1.2.3": (None, None),
    "127.0.0.1": (None, None),
}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_database(tmp_path_factory.mktemp("cache"))


def write_db(path: Path, database_type: str, rows: list[tuple[str, dict[str, object]]]) -> Path:
    writer = MMDBWriter(
        ip_version=6, database_type=database_type, ipv4_compatible=True, languages=["en"], description={"en": "test"}
    )
    for cidr, record in rows:
        writer.insert_network(IPSet([cidr]), record)
    tmp = path.with_name(path.name + ".new")
    writer.to_db_file(str(tmp))
    tmp.replace(path)  # how an operator should replace it: atomically
    return path


def test_bundled_database_answers_the_acceptance_lookups(bundled: Path) -> None:
    db = IspDatabase(bundled)
    for ip, (asn, org) in ACCEPTANCE.items():
        info = db.lookup(ip)
        assert (info.asn, info.org) == (asn, org), ip
    assert db.lookup("::ffff:1.1.1.1").asn == 13335
    assert db.lookup("not an ip").asn is None
    info = db.info()
    assert info.database_type == "GeoLite2-ASN" and info.layout == "asn" and info.node_count > 1_000_000
    db.close()


def test_bundled_database_uses_the_c_reader(bundled: Path) -> None:
    # The < 5 µs lookup depends on the C extension; the pure-Python reader is ~10x slower.
    db = IspDatabase(bundled)
    assert type(db._reader).__module__ == "maxminddb.extension"
    db.close()


def test_bundled_cache_is_reused_and_repaired(tmp_path: Path) -> None:
    first = bundled_database(tmp_path)
    assert first.name == f"isp-{bundled_manifest()['sha256'][:16]}.mmdb"
    stamp = first.stat().st_mtime_ns
    assert bundled_database(tmp_path) == first and first.stat().st_mtime_ns == stamp  # reused, not rewritten
    with open(first, "r+b") as fh:  # damage one byte in the middle: the hash check must notice
        fh.seek(first.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    (tmp_path / "isp-0000000000000000.mmdb").write_bytes(b"an older bundle")
    again = bundled_database(tmp_path)
    assert again == first and IspDatabase(again).lookup("8.8.8.8").asn == 15169
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # old copies and temp files gone


def test_bundled_database_is_small_and_attributed() -> None:
    data = Path(__file__).resolve().parents[2] / "collector" / "data"
    assert (data / "asn.mmdb.xz").stat().st_size < 8_000_000
    for notice in ("DBIP-LICENSE", "NRO_LICENSE", "ROUTEVIEWS-LICENSE", "MODIFICATIONS"):
        assert (data / notice).is_file()
    assert "CC BY 4.0" in (data / "README.md").read_text()


def test_geoip2_isp_layout_uses_the_isp_name(tmp_path: Path) -> None:
    path = write_db(
        tmp_path / "isp.mmdb",
        "GeoIP2-ISP",
        [
            (
                "81.2.69.0/24",
                {
                    "autonomous_system_number": 20712,
                    "autonomous_system_organization": "Andrews & Arnold Ltd",
                    "isp": "Andrews & Arnold",
                    "organization": "A&A Customer",
                },
            ),
            ("81.2.70.0/24", {"autonomous_system_number": 20712, "organization": "Only Organisation"}),
        ],
    )
    db = IspDatabase(path)
    assert db.info().layout == "isp"
    assert (db.lookup("81.2.69.160").asn, db.lookup("81.2.69.160").org) == (20712, "Andrews & Arnold")
    assert db.lookup("81.2.70.1").org == "Only Organisation"


def test_dbip_asn_lite_layout(tmp_path: Path) -> None:
    path = write_db(
        tmp_path / "dbip.mmdb",
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        [
            ("8.8.8.0/24", {"autonomous_system_number": 15169, "autonomous_system_organization": "Google LLC"}),
        ],
    )
    db = IspDatabase(path)
    assert db.info().layout == "asn"
    hit = db.lookup("8.8.8.8")
    assert (hit.asn, hit.org, hit.registered) == (15169, "Google", "Google LLC")


def test_location_databases_are_refused(tmp_path: Path) -> None:
    path = write_db(tmp_path / "city.mmdb", "GeoLite2-City", [("8.8.8.0/24", {"city": {"names": {"en": "X"}}})])
    with pytest.raises(UnsupportedDatabase, match="not an ASN/ISP database"):
        IspDatabase(path)


def test_reload_picks_up_a_replaced_file_and_survives_a_broken_one(tmp_path: Path) -> None:
    path = write_db(
        tmp_path / "db.mmdb",
        "GeoLite2-ASN",
        [
            ("8.8.8.0/24", {"autonomous_system_number": 64999, "autonomous_system_organization": "Old Org"}),
        ],
    )
    db = IspDatabase(path)
    assert db.reload_if_changed() is False
    write_db(
        path,
        "GeoLite2-ASN",
        [
            ("8.8.8.0/24", {"autonomous_system_number": 15169, "autonomous_system_organization": "New Org"}),
        ],
    )
    assert db.reload_if_changed() is True
    assert db.lookup("8.8.8.8").org == "New Org"
    broken = tmp_path / "broken"
    broken.write_bytes(b"half a file")
    broken.replace(path)
    assert db.reload_if_changed() is False
    assert db.lookup("8.8.8.8").org == "New Org"  # the previous database stays in service
    db.close()


def _post(url: str, ip: str) -> None:
    r = web.post(
        url + "/api/event",
        json={"n": "pageview", "u": "https://www.onecloud.example/", "d": "www.onecloud.example"},
        headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip},
    )
    assert r.status_code == 202 and "x-drop-reason" not in r.headers, r.text


def _records(data_dir: Path, n: int, timeout: float = 10.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        records = sealed_records(data_dir)
        if len(records) >= n or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


ENV = {"ANALYTICS_SITES": "www.onecloud.example", "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32"}


def test_end_to_end_with_the_bundled_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_collector(data, ENV) as server:  # no ANALYTICS_ISP_DB: the bundled one
        assert web.get(server.url + "/readyz").json()["checks"]["isp_database"] is True
        for ip in ACCEPTANCE:
            _post(server.url, ip)
        records = _records(data, len(ACCEPTANCE))
        log = server.log()
    assert [(r["asn"], r["isp"]) for r in records] == list(ACCEPTANCE.values())
    assert list((data / "cache").glob("isp-*.mmdb"))
    for ip in ("8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "10.1.2.3"):  # no address in any file or log
        for f in data.rglob("*"):
            if f.is_file() and f.suffix != ".mmdb":
                assert ip.encode() not in f.read_bytes(), f
        assert ip not in log


def test_end_to_end_replaced_database_without_restart(tmp_path: Path) -> None:
    db = tmp_path / "operator.csv"
    db.write_text("8.8.8.0,8.8.8.255,64999,Old Org\n")
    mmdb = tmp_path / "operator.mmdb"
    build([db], mmdb)
    data = tmp_path / "data"
    with running_collector(data, {**ENV, "ANALYTICS_ISP_DB": str(mmdb)}) as server:
        _post(server.url, "8.8.8.8")
        assert _records(data, 1)[-1]["isp"] == "Old Org"
        db.write_text("8.8.8.0,8.8.8.255,15169,Google LLC\n")
        build([db], mmdb)  # the builder replaces the file atomically, as refresh does
        deadline = time.monotonic() + 20  # housekeeping looks every 5 s
        seen = "Old Org"
        while seen == "Old Org" and time.monotonic() < deadline:
            time.sleep(0.5)
            _post(server.url, "8.8.8.8")
            records = _records(data, 0, timeout=0)
            seen = str(records[-1]["isp"]) if records else seen
        assert seen == "Google"
        assert server.proc.poll() is None


def test_a_failed_start_on_a_full_disk_leaves_no_partial_copy(tmp_path: Path) -> None:
    # Issue 13, item 7: a start on a full disk left cache/.isp-*.tmp behind (8 MB of a partial copy).
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        with pytest.raises(OSError):
            bundled_database(disk / "cache")
        assert list((disk / "cache").iterdir()) == []
        # The same through a real start: the collector exits, and nothing is left in the cache.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
        env["ANALYTICS_DATA_DIR"] = str(disk / "data")
        cmd = [sys.executable, "-m", "collector", "serve", "--port", str(free_port())]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert "No space left on device" in proc.stderr
        assert list((disk / "data" / "cache").iterdir()) == []


def test_one_answer_per_network_name_is_built(tmp_path: Path) -> None:
    # Answers are kept per (AS number, name) of the database: two visitors of one network share one.
    path = write_db(
        tmp_path / "asn.mmdb",
        "GeoLite2-ASN",
        [
            ("8.8.8.0/24", {"autonomous_system_number": 15169, "autonomous_system_organization": "Google LLC"}),
            ("9.9.9.0/24", {"autonomous_system_number": 19281, "autonomous_system_organization": ""}),
        ],
    )
    db = IspDatabase(path)
    a, b = db.lookup("8.8.8.8"), db.lookup("8.8.8.9")
    assert a is b and (a.asn, a.org, a.registered) == (15169, "Google", "Google LLC")
    c = db.lookup("9.9.9.9")
    assert (c.asn, c.org, c.registered) == (19281, None, None) and db.lookup("9.9.9.10") is c
