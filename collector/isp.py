"""IP address → (AS number, organisation), from a MaxMind-format database in memory.

Accepts GeoLite2-ASN, DB-IP ASN-lite and GeoIP2-ISP layouts (detected from the
file's metadata). The file is memory-mapped by the C reader; a lookup is a few
microseconds and makes no network call. A replaced file is picked up by
:meth:`IspDatabase.reload_if_changed`, which the app calls off the event loop.

Private, loopback and unknown addresses resolve to ``(None, None)``: "unknown".
No location field is ever read, even from a database that has one.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb


@dataclass(frozen=True, slots=True)
class IspInfo:
    asn: int | None
    org: str | None


UNKNOWN_ISP = IspInfo(None, None)


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
    t = database_type.lower()
    if "isp" in t:
        return "isp"
    return "asn"


class IspDatabase:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reader: Any = None
        self._stat: tuple[int, int] | None = None
        self._layout = "asn"
        self.load()

    def load(self) -> None:
        st = os.stat(self.path)
        reader = _open(self.path)
        layout = _layout(reader.metadata().database_type)
        with self._lock:
            old = self._reader
            self._reader, self._layout = reader, layout
            self._stat = (st.st_mtime_ns, st.st_ino)
        if old is not None:
            old.close()

    def reload_if_changed(self) -> bool:
        """Reopen the file if it was replaced (new inode or mtime); blocking: call from a thread."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_ino) == self._stat:
            return False
        self.load()
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

    def lookup(self, ip: str) -> IspInfo:
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
        return IspInfo(
            asn=asn if isinstance(asn, int) else None,
            org=org if isinstance(org, str) and org else None,
        )

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def is_public(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False
