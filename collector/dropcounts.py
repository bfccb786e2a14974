"""Per-worker counts of the events answered 202 and not stored, written to the spool as small aggregate files.

``/metrics`` counts drops per worker since it started (collector/metrics.py); the
dashboards' "Filtered" line needs them per site and UTC day, kept. So each worker
also keeps, in memory, one integer per (site, day, reason, bot kind) — the hot
path does one dict increment (:meth:`DropCounts.add`), no I/O — and every
:data:`FLUSH_SECONDS` and at shutdown writes what it counted since the last
write as one sealed spool file, ``sealed/<ns>-<host>-<pid>-<seq>.drops``, of
:class:`collector.schema.DropCount` JSON lines. The aggregator's ingest sums
them into the lake exactly once (aggregator/drops.py).

What is kept is a count: no address, user agent, path, or time finer than the
day. The site is one the collector knows (the allowlist's spelling), never the
domain a request named: an ``unknown_site`` drop — attacker input by definition
— is counted with no site. The number of keys is bounded by the allowlist's
sites x 2 days x the closed sets of reasons and kinds.

Written like a segment: to a locked temporary file in ``open/``, fsynced, renamed
into ``sealed/``, the directory fsynced. A write that fails puts the counts back
to be written with the next one. A worker killed hard loses the counts since its
last write (``/metrics`` had them); a temporary file it leaves is removed at the
next start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import logging
import os
import socket
import time
from pathlib import Path

import orjson

from collector.reasons import DropKind, DropReason
from collector.schema import DROP_COUNTS_SUFFIX, DropCount
from collector.spoolrecovery import fsync_dir

log = logging.getLogger("collector.dropcounts")

#: How often a worker writes its counts (and at shutdown): bounded I/O whatever the traffic.
FLUSH_SECONDS = 60.0
_TMP_SUFFIX = DROP_COUNTS_SUFFIX + ".tmp"

Key = tuple[str | None, int, DropReason, DropKind | None]  # (site, UTC day number, reason, bot kind)


class DropCounts:
    def __init__(self, spool_dir: Path) -> None:
        self.open_dir = spool_dir / "open"
        self.sealed_dir = spool_dir / "sealed"
        self._counts: dict[Key, int] = {}
        self._seq = 0
        self._prefix = f"{socket.gethostname()}-{os.getpid()}"

    def add(self, site: str | None, ts: int, reason: DropReason, kind: DropKind | None = None) -> None:
        """Count one drop (event loop; one dict increment). ``site``: a known site's name, or None."""
        key = (site, ts // 86400, reason, kind)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def start(self) -> None:
        """Remove the temporary files of workers that died while writing (their lock is free)."""
        if not self.open_dir.is_dir():
            return
        for path in self.open_dir.glob("*" + _TMP_SUFFIX):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
            except BlockingIOError:
                pass  # a live worker is writing it
            finally:
                os.close(fd)

    async def flush(self) -> None:
        """Write what was counted since the last write (the file I/O in a thread, off the event loop)."""
        counts, self._counts = self._counts, {}
        if not counts:
            return
        # Named here, on the loop: a write still running in a thread after a cancel never shares the name.
        self._seq += 1
        name = f"{time.time_ns():020d}-{self._prefix}-{self._seq:06d}{DROP_COUNTS_SUFFIX}"
        try:
            await asyncio.to_thread(self._write, name, counts)
        except OSError as exc:
            # Kept for the next write: a full disk delays the counts, it does not lose them.
            for key, n in counts.items():
                self._counts[key] = self._counts.get(key, 0) + n
            log.error("drop counts not written: %s", exc.strerror or exc.__class__.__name__)

    async def run(self, interval: float = FLUSH_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush()

    def _write(self, name: str, counts: dict[Key, int]) -> None:
        lines = b"".join(
            orjson.dumps(DropCount(site, _day(day), reason, kind, n).to_record(), option=orjson.OPT_APPEND_NEWLINE)
            for (site, day, reason, kind), n in sorted(counts.items(), key=_order)
        )
        self.open_dir.mkdir(parents=True, exist_ok=True)
        self.sealed_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.open_dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until closed: a start-up sweep leaves this file alone
            view = memoryview(lines)
            written = 0
            while written < len(lines):
                written += os.write(fd, view[written:])
            os.fsync(fd)
            os.rename(tmp, self.sealed_dir / name)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        # Renamed: the counts are in sealed/ now; a failing directory fsync must not write them twice.
        try:
            fsync_dir(self.sealed_dir)
            fsync_dir(self.open_dir)
        except OSError as exc:
            log.error("drop counts: directory fsync failed: %s", exc.strerror or exc.__class__.__name__)


def _day(number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=number)).isoformat()


def _order(item: tuple[Key, int]) -> tuple[str, int, str, str]:
    (site, day, reason, kind), _ = item
    return (site or "", day, reason, kind or "")
