"""Day salts and day keys (PRIVACY.md rule 2).

A salt is 256 random bits drawn from the OS for each UTC day; nothing derives it
from a long-lived secret, so once it is destroyed the day's keys cannot be
recomputed from an IP and a UA. Salts are shared by the worker processes of one
host through files in a collector-only directory (0700, files 0600), created
race-free (write a temporary file, then ``link`` it into place: exactly one
worker wins, the others read the winner's salt). Yesterday's salt stays only
so that a request straddling midnight still finds it; anything older is
destroyed, which bounds a salt's life to 48 hours.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

SALT_BYTES = 32

log = logging.getLogger("collector.salts")


class SaltUnavailable(Exception):
    """The day's shared salt cannot be had now: the event is refused (503), never keyed otherwise.

    A key from a salt that other collectors do not share would count one visitor
    as several, and a locally made-up salt could not be destroyed on schedule by
    the shared store; so there is no fallback.
    """


class SaltStore(Protocol):
    def salt_for(self, day: dt.date) -> bytes: ...

    def purge(self, today: dt.date) -> list[dt.date]: ...


def utc_day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


class FileSaltStore:
    """Salts as files ``<dir>/<YYYY-MM-DD>.salt``, readable by the collector's user only."""

    # Local files: fast enough to read on the event loop on the first request of a day.
    remote = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def path_for(self, day: dt.date) -> Path:
        return self.directory / f"{day.isoformat()}.salt"

    def salt_for(self, day: dt.date) -> bytes:
        # A full or read-only disk (or any other I/O error) is an outage of the store, answered
        # 503 like a store that cannot be reached: never a 500, never a key from a private salt.
        try:
            return self._salt_for(day)
        except OSError as exc:
            raise SaltUnavailable(f"salt for {day.isoformat()}: {exc.strerror or exc.__class__.__name__}") from exc

    def _salt_for(self, day: dt.date) -> bytes:
        path = self.path_for(day)
        try:
            data = path.read_bytes()
            if len(data) == SALT_BYTES:
                return data
        except FileNotFoundError:
            pass
        self._ensure_dir()
        tmp = self.directory / f".{day.isoformat()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                if os.write(fd, secrets.token_bytes(SALT_BYTES)) != SALT_BYTES:
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)
            with contextlib.suppress(FileExistsError):  # another worker created the day's salt first
                os.link(tmp, path)  # atomic: the salt appears whole or not at all
        finally:
            # Also on failure: a full disk left one empty temp file per attempt.
            tmp.unlink(missing_ok=True)
        data = path.read_bytes()
        if len(data) != SALT_BYTES:
            raise OSError(errno.EIO, f"salt file {path.name} is damaged")
        return data

    def purge(self, today: dt.date) -> list[dt.date]:
        """Destroy every salt older than yesterday; returns the days destroyed."""
        removed: list[dt.date] = []
        if not self.directory.is_dir():
            return removed
        keep_from = today - dt.timedelta(days=1)
        for entry in self.directory.iterdir():
            name = entry.name
            if name.endswith(".tmp"):
                # A worker that died between create and link leaves one behind.
                if time.time() - entry.stat().st_mtime > 60:
                    entry.unlink(missing_ok=True)
                continue
            if not name.endswith(".salt"):
                continue
            try:
                day = dt.date.fromisoformat(name.removesuffix(".salt"))
            except ValueError:
                continue
            if day < keep_from:
                _shred(entry)
                removed.append(day)
        return removed


def _shred(path: Path) -> None:
    # Overwrite before unlinking: cheap, and it keeps the bytes out of a later
    # backup of a still-allocated block on simple filesystems.
    try:
        with open(path, "r+b", buffering=0) as fh:
            fh.write(b"\0" * SALT_BYTES)
            os.fsync(fh.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)


DAY_SECONDS = 86400
#: How long before midnight :meth:`DayKeys.rotate` loads the next day's salt.
PREFETCH_SECONDS = 600
#: How much earlier than that it destroys the salt of the day before: the two happen on different
#: housekeeping ticks (every 5 s), so a salt's life stays under 48 hours.
PURGE_LEAD_SECONDS = 30


class DayKeys:
    """Computes the 64-bit day key; holds the current day's salt in memory only."""

    def __init__(self, store: SaltStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._day: dt.date | None = None
        self._by_day: dict[dt.date, bytes] = {}
        # A network store (PostgreSQL) is never called from the event loop: a cache
        # miss there starts one background fetch and refuses the event meanwhile.
        self._remote = bool(getattr(store, "remote", False))
        self._fetching: set[dt.date] = set()
        # Separate from _lock, which a blocking fetch holds for as long as the network takes.
        self._fetch_lock = threading.Lock()
        #: Why today's salt could not be had at the last readiness check (no request data in it).
        self.last_error: str | None = None
        self._day_memo: tuple[int, dt.date] = (-1, dt.date.min)
        # The salt last used by key() and blake2b keyed with it (no message yet).
        self._keyed: tuple[bytes, hashlib.blake2b] | None = None

    def _fetch_in_background(self, day: dt.date) -> None:
        with self._fetch_lock:
            if day in self._fetching:
                return
            self._fetching.add(day)

        def run() -> None:
            try:
                self._salt_of(day, blocking=True)
            except Exception:  # counted as 503s by the caller; housekeeping logs store failures
                pass
            finally:
                with self._fetch_lock:
                    self._fetching.discard(day)

        threading.Thread(target=run, name="salt-fetch", daemon=True).start()

    def _salt_of(self, day: dt.date, *, blocking: bool = True) -> bytes:
        salt = self._by_day.get(day)
        if salt is not None:
            return salt
        if not blocking:
            self._fetch_in_background(day)
            raise SaltUnavailable("the day's salt is being fetched")
        with self._lock:
            salt = self._by_day.get(day)
            if salt is None:
                salt = self.store.salt_for(day)
                # Keep at most today and yesterday in memory, like the store.
                self._by_day = {d: s for d, s in self._by_day.items() if d >= day - dt.timedelta(days=1)}
                self._by_day[day] = salt
                try:
                    self.store.purge(day)
                except (OSError, SaltUnavailable) as exc:  # the key can be made; housekeeping retries the purge
                    log.error("salt purge failed: %s", exc.__class__.__name__)
            return salt

    def available(self) -> bool:
        """Whether today's salt can be had (readiness): from memory, else from the store.

        Blocking for a local store (call it from a thread); a network store is only
        asked in the background, and the answer is "not yet" meanwhile.
        """
        try:
            self._salt_of(utc_day(self.clock()), blocking=not self._remote)
        except SaltUnavailable as exc:
            self.last_error = str(exc)
            return False
        self.last_error = None
        return True

    def rotate(self, now: float | None = None) -> None:
        """Load today's salt and destroy old ones (called at start and every few seconds).

        In the last minutes of a day it also loads tomorrow's salt: with a
        network store, the first events after midnight would otherwise be
        refused (503) until a background fetch got it. The new salt is drawn
        at random as always and only used from 00:00; yesterday's salt is
        destroyed 30 s before that window opens, so no salt lives longer than
        48 hours from its creation.
        """
        t = self.clock() if now is None else now
        day = utc_day(t)
        self._salt_of(day)
        with self._lock:
            self._by_day = {d: s for d, s in self._by_day.items() if d >= day - dt.timedelta(days=1)}
        self.store.purge(day)
        to_midnight = (t // DAY_SECONDS + 1) * DAY_SECONDS - t
        if to_midnight <= PREFETCH_SECONDS + PURGE_LEAD_SECONDS:
            # Yesterday's salt goes before tomorrow's is drawn, so that no salt outlives 48 hours from
            # its creation (10 minutes before its day) even if the fetch below fails.
            with self._lock:
                self._by_day = {d: s for d, s in self._by_day.items() if d >= day}
            self.store.purge(day + dt.timedelta(days=1))
        if to_midnight <= PREFETCH_SECONDS:
            self._salt_of(day + dt.timedelta(days=1))
        keyed = self._keyed
        if keyed is not None and all(keyed[0] is not salt for salt in self._by_day.values()):
            self._keyed = None  # its salt is destroyed: so is the hasher that holds it

    def key(self, ts: float, site: str, ip: str, ua: str) -> int:
        number = int(ts // DAY_SECONDS)  # the UTC day, as utc_day() gives it, without a datetime per call
        day = self._day_memo
        if day[0] != number:
            day = self._day_memo = (number, utc_day(ts))
        salt = self._salt_of(day[1], blocking=not self._remote)
        keyed = self._keyed
        if keyed is None or keyed[0] is not salt:
            # blake2b keyed with the salt, before any message: copying it skips hashing the key
            # block again for every event. Dropped with its salt (rotate).
            keyed = self._keyed = (salt, hashlib.blake2b(key=salt, digest_size=8))
        h = keyed[1].copy()
        # Length-prefixed fields: ("a","bc") and ("ab","c") must not collide.
        h.update(f"{len(site)}:{site}|{len(ip)}:{ip}|{ua}".encode("utf-8", "surrogatepass"))
        return int.from_bytes(h.digest(), "big")
