"""``python -m collector isp-db``: real subprocesses, real files; no network (refresh is fed a local tarball)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.collector.test_ispbuild import FIXTURE_V4, FIXTURE_V6, write_fixture
from tests.conftest import ROOT


def run(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    full["ANALYTICS_DATA_DIR"] = str(tmp_path / "data")
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "collector", "isp-db", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("ip", "answer"),
    [
        ("8.8.8.8", "AS15169 Google LLC  (shown as: Google)"),
        ("1.1.1.1", "AS13335 Cloudflare, Inc.  (shown as: Cloudflare)"),
        ("2001:4860:4860::8888", "AS15169 Google LLC  (shown as: Google)"),
        ("10.1.2.3", "unknown"),
        ("127.0.0.1", "unknown"),
    ],
)
def test_lookup_with_the_bundled_database(tmp_path: Path, ip: str, answer: str) -> None:
    out = run(["lookup", ip], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == answer


def test_build_then_info_and_lookup(tmp_path: Path) -> None:
    csvs = write_fixture(tmp_path)
    db = tmp_path / "built.mmdb"
    out = run(["build", *map(str, csvs), "-o", str(db), "--epoch", "1781722800"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(db)
    assert "isp-db: done:" in out.stderr  # progress goes to stderr
    info = run(["info", "--db", str(db)], tmp_path)
    assert info.returncode == 0, info.stderr
    assert "GeoLite2-ASN (read as asn)" in info.stdout
    assert "2026-06-17 19:00 UTC" in info.stdout
    assert "networks" in info.stdout and "nodes" in info.stdout
    assert run(["lookup", "100.65.2.7", "--db", str(db)], tmp_path).stdout.strip() == "AS64500 Later Same Width"
    # ANALYTICS_ISP_DB is the default when set.
    env = {"ANALYTICS_ISP_DB": str(db)}
    shown = run(["lookup", "2a00:1450:4001::1"], tmp_path, env).stdout.strip()
    assert shown == "AS64510 Inner Six Ltd  (shown as: Inner Six)"


def test_info_defaults_to_the_bundled_database(tmp_path: Path) -> None:
    info = run(["info", "--no-count"], tmp_path)
    assert info.returncode == 0, info.stderr
    assert str(tmp_path / "data" / "cache") in info.stdout
    assert "2026-06-17" in info.stdout


def test_build_rejects_missing_input(tmp_path: Path) -> None:
    out = run(["build", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "x.mmdb")], tmp_path)
    assert out.returncode == 2 and "no file at" in out.stderr


def make_package(tmp_path: Path) -> Path:
    """A tarball shaped like `npm pack @ip-location-db/asn` (package/…)."""
    tgz = tmp_path / "ip-location-db-asn-9.9.2027010203.tgz"
    files = {
        "package/package.json": json.dumps({"name": "@ip-location-db/asn", "version": "9.9.2027010203"}),
        "package/asn-ipv4.csv": FIXTURE_V4,
        "package/asn-ipv6.csv": FIXTURE_V6,
        "package/DBIP-LICENSE": "CC BY 4.0",
        "package/asn-ipv4-num.csv": "ignored",
    }
    with tarfile.open(tgz, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return tgz


def test_refresh_from_a_package_tarball(tmp_path: Path) -> None:
    out = run(["refresh", "--tarball", str(make_package(tmp_path))], tmp_path)
    assert out.returncode == 0, out.stderr
    target = tmp_path / "data" / "isp" / "asn.mmdb"
    assert out.stdout.strip() == str(target)
    assert "ANALYTICS_ISP_DB=" in out.stderr  # tells the operator how to use it
    info = run(["info", "--db", str(target)], tmp_path)
    assert "2027-01-02 03:00 UTC" in info.stdout  # build date taken from the package version
    shown = run(["lookup", "8.8.8.8", "--db", str(target)], tmp_path).stdout.strip()
    assert shown == "AS15169 Google LLC  (shown as: Google)"


def test_refresh_replaces_the_configured_database(tmp_path: Path) -> None:
    target = tmp_path / "operator.mmdb"
    target.write_bytes(b"")  # ANALYTICS_ISP_DB must name an existing file
    out = run(["refresh", "--tarball", str(make_package(tmp_path))], tmp_path, {"ANALYTICS_ISP_DB": str(target)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(target) and target.stat().st_size > 0
    assert "ANALYTICS_ISP_DB=" not in out.stderr


def test_refresh_without_npm_says_what_to_do(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    out = run(["refresh"], tmp_path, {"PATH": str(empty)})
    assert out.returncode == 2
    assert "npm not found" in out.stderr and "--tarball" in out.stderr


def test_refresh_with_a_bad_tarball(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tarball")
    out = run(["refresh", "--tarball", str(bad)], tmp_path)
    assert out.returncode == 1 and "cannot read" in out.stderr
