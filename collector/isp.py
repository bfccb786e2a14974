"""IP address → (AS number, organisation), from a MaxMind-format database in memory.

Accepts GeoLite2-ASN, DB-IP ASN-lite and GeoIP2-ISP layouts (detected from the
file's metadata). The file is memory-mapped by the C reader; a lookup is a few
microseconds and makes no network call. A replaced file is picked up by
:meth:`IspDatabase.reload_if_changed`, which the app calls off the event loop.

Private, loopback and unknown addresses resolve to ``(None, None)``: "unknown".
No location field is ever read, even from a database that has one.

With no ``ANALYTICS_ISP_DB``, the database shipped in ``collector/data`` is used:
it is stored xz-compressed (4 MB instead of 11 MB) and decompressed once into
``<data_dir>/cache/`` so that the C reader can memory-map it (the pages are
shared between workers and only the touched ones count as resident).
"""

from __future__ import annotations

import hashlib
import json
import logging
import lzma
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import maxminddb

from collector.orgnames import normalise_org

log = logging.getLogger("collector.isp")

# CC BY 4.0 credit for the bundled data, owed wherever ISP names derived from it are
# shown (the /privacy page, dashboards, reports); DB-IP asks for the link.
ATTRIBUTION = "ISP data: DB-IP.com, RouteViews, NRO (CC BY 4.0)"
ATTRIBUTION_URL = "https://db-ip.com"

BUNDLE_NAME = "asn.mmdb.xz"
BUNDLE_MANIFEST = "asn.mmdb.json"


class UnsupportedDatabase(ValueError):
    """The file is a MaxMind-format database, but not an ASN/ISP one."""


@dataclass(frozen=True, slots=True)
class IspInfo:
    asn: int | None
    org: str | None  # the display name (normalised); this is what is stored
    registered: str | None = None  # the name as the database spells it


UNKNOWN_ISP = IspInfo(None, None)
#: Answers kept per database pair of AS number and name (far more than a real database holds).
_MAX_INFOS = 100_000


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    path: str
    database_type: str
    layout: str
    build_epoch: int
    node_count: int
    ip_version: int
    description: str


def _open(path: Path) -> Any:
    try:
        return maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT)
    except (ImportError, ValueError):  # C extension unavailable: the pure reader still works
        return maxminddb.open_database(str(path), maxminddb.MODE_MMAP)


def _layout(database_type: str) -> str:
    """``asn`` (GeoLite2-ASN, DBIP-ASN-Lite, ours) or ``isp`` (GeoIP2-ISP), from the metadata type."""
    t = database_type.lower()
    if "isp" in t:  # GeoIP2-ISP, DBIP-ISP
        return "isp"
    if "asn" in t:  # GeoLite2-ASN, GeoIP2-ASN, "DBIP-ASN-Lite (compat=GeoLite2-ASN)"
        return "asn"
    # A City or Country database would "work" and give nothing useful, and it holds
    # location data the privacy rules forbid us to touch: refuse it by name.
    raise UnsupportedDatabase(
        f"database type {database_type!r} is not an ASN/ISP database "
        "(expected GeoLite2-ASN, GeoIP2-ISP or DB-IP ASN-lite)"
    )


class IspDatabase:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reader: Any = None
        self._retired: Any = None
        self._stat: tuple[int, int, int] | None = None
        self._layout = "asn"
        self._infos: dict[tuple[int | None, str | None], IspInfo] = {}
        self.load()

    def load(self) -> None:
        st = os.stat(self.path)
        reader = _open(self.path)
        try:
            layout = _layout(reader.metadata().database_type)
        except UnsupportedDatabase:
            reader.close()
            raise
        with self._lock:
            # The event loop may hold a reference to the current reader mid-lookup:
            # close it only at the next swap, long after any lookup has finished.
            if self._retired is not None:
                self._retired.close()
            self._retired = self._reader
            self._reader, self._layout = reader, layout
            self._stat = (st.st_mtime_ns, st.st_ino, st.st_size)

    def reload_if_changed(self) -> bool:
        """Reopen the file if it was replaced (new inode, mtime or size); blocking: call from a thread.

        A replacement that cannot be opened (half-copied, wrong type) leaves the
        previous database in service; the next change is tried again.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_ino, st.st_size) == self._stat:
            return False
        try:
            self.load()
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            log.warning("ISP database %s not reloaded: %s; keeping the previous one", self.path, exc)
            self._stat = (st.st_mtime_ns, st.st_ino, st.st_size)
            return False
        log.info("ISP database reloaded: %s", self.path)
        return True

    def info(self) -> DatabaseInfo:
        meta = self._reader.metadata()
        desc = meta.description.get("en", "") if isinstance(meta.description, dict) else ""
        return DatabaseInfo(
            path=str(self.path),
            database_type=meta.database_type,
            layout=self._layout,
            build_epoch=int(meta.build_epoch),
            node_count=int(meta.node_count),
            ip_version=int(meta.ip_version),
            description=desc,
        )

    def network_count(self) -> int:
        """Networks (records in the tree) in the file: walks it all, ~4 s for the bundled one."""
        return sum(1 for _ in self._reader)

    def lookup(self, ip: str) -> IspInfo:
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]  # IPv4 seen through a dual-stack socket: not every database aliases it
        try:
            record = self._reader.get(ip)
        except ValueError:  # not an IP address, or IPv6 in an IPv4-only database
            return UNKNOWN_ISP
        if not isinstance(record, dict):
            return UNKNOWN_ISP
        asn = record.get("autonomous_system_number")
        if self._layout == "isp":
            org = record.get("isp") or record.get("organization") or record.get("autonomous_system_organization")
        else:
            org = record.get("autonomous_system_organization")
        if not isinstance(asn, int):
            asn = None
        if not isinstance(org, str) or not org:
            org = None
        key = (asn, org)
        info = self._infos.get(key)
        if info is None:
            # Tens of thousands of distinct (AS, name) pairs at most, all from the database, none
            # from a visitor: each answer is built (its name normalised) once per process.
            if len(self._infos) >= _MAX_INFOS:
                self._infos.clear()
            shown = None if org is None else normalise_org(org) or org
            info = self._infos[key] = IspInfo(asn=asn, org=shown, registered=org)
        return info

    def close(self) -> None:
        with self._lock:
            for reader in (self._reader, self._retired):
                if reader is not None:
                    reader.close()
            self._reader = self._retired = None


HOSTING_LIST = "hosting-asns.txt"


def hosting_asns() -> frozenset[int]:
    """AS numbers of hosting and cloud networks (collector/data/hosting-asns.txt, built by bench/hosting_asns.py).

    A data-centre signal for the bot gate: people browse from ISPs, scripts run
    in clouds. CDNs and relays that carry people (iCloud Private Relay, WARP,
    corporate security proxies) are deliberately not in the list.
    """
    text = resources.files("collector").joinpath("data", HOSTING_LIST).read_text()
    return frozenset(int(line.split("\t", 1)[0]) for line in text.splitlines() if line and not line.startswith("#"))


def bundled_manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("collector").joinpath("data", BUNDLE_MANIFEST).read_text())
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def bundled_database(cache_dir: Path) -> Path:
    """The shipped database, decompressed into ``cache_dir`` once and reused while intact.

    The cache name carries the content hash, so an upgraded package never reuses
    an older copy; a truncated or altered copy fails the hash and is rebuilt.
    Safe with several workers starting at once: each writes a private temp file
    and renames it over the same (identical) target.
    """
    manifest = bundled_manifest()
    digest = str(manifest["sha256"])
    target = cache_dir / f"isp-{digest[:16]}.mmdb"
    if target.is_file() and target.stat().st_size == manifest["size"] and _sha256(target) == digest:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".isp-{digest[:16]}.{os.getpid()}.tmp"
    h = hashlib.sha256()
    src = resources.files("collector").joinpath("data", BUNDLE_NAME)
    try:
        with src.open("rb") as raw, lzma.open(raw) as xz, open(tmp, "wb") as out:
            while chunk := xz.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != digest:
            raise OSError(f"bundled ISP database {src} does not match its manifest (damaged install?)")
        tmp.replace(target)
    except BaseException:
        # A full disk (or a kill) mid-write must not leave megabytes of partial copy behind.
        tmp.unlink(missing_ok=True)
        raise
    for old in cache_dir.glob("isp-*.mmdb"):  # copies of earlier versions of the bundle
        if old != target:
            old.unlink(missing_ok=True)
    return target
