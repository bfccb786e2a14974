"""The durable spool: append-only JSON-lines segments with group commit.

One writer thread per worker process owns the open segment (the single-writer
pattern: a queue in front of one thread). Request handlers add their encoded
event to their event loop's current batch (:mod:`collector.groupcommit`) and
await a future; the thread writes each batch it is handed with one synchronous
write (the segment is opened ``O_DSYNC``: the write returns once the bytes are
on disk, as after ``fdatasync``), and only then are the batch's futures
resolved. So a 202 is sent only for an event that is on disk, and one disk
flush serves every request that arrived while the previous one ran.

Layout under the spool directory::

    open/<start>-<host>-<pid>-<seq>.jsonl     being written (flock held by its writer)
    sealed/<same name>                        complete, ready for the aggregator

A segment is sealed by rename once it is old or large enough. A writer that
died leaves its open segment behind: the next writer to start takes the file's
lock (proof that its owner is gone), cuts a torn last line, and seals it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from collector.groupcommit import Batch, LoopBatcher
from collector.schema import SCHEMA_VERSION, Event
from collector.spoolrecovery import fsync_dir, recover_orphans

log = logging.getLogger("collector.spool")

_STOP = object()
_NL = orjson.OPT_APPEND_NEWLINE
# orjson writes a dataclass's fields in their order, which is the record's (collector.schema);
# the record puts its version first and stores the properties as an object.
_HEAD = b'{"v":%d,' % SCHEMA_VERSION
_NO_PROPS = b'"props":[]}'
_NO_PROPS_TAIL = b'"props":{}}\n'


def encode(event: Event) -> bytes:
    """The spool line of ``event``: the bytes of ``orjson.dumps(event.to_record())`` plus a newline.

    Built by orjson straight from the slots of the dataclass (no intermediate dict, ~1 µs less per
    event); an event with properties, a small share, goes the dict way.
    """
    if not event.props:
        body = orjson.dumps(event)
        if body.endswith(_NO_PROPS):
            return b"".join((_HEAD, body[1 : -len(_NO_PROPS)], _NO_PROPS_TAIL))
    return orjson.dumps(event.to_record(), option=_NL)


class SpoolUnavailable(Exception):
    """The event could not be made durable; the caller answers 503."""


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        segment_seconds: float = 10.0,
        segment_bytes: int = 16 * 1024 * 1024,
        batch_events: int = 2048,
        max_pending: int = 100_000,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        self.directory = directory
        self.open_dir = directory / "open"
        self.sealed_dir = directory / "sealed"
        self.segment_seconds = segment_seconds
        self.segment_bytes = segment_bytes
        self.batch_events = batch_events
        self.max_pending = max_pending
        self.clock = clock
        self.on_commit = on_commit
        self.healthy = False
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending = 0
        self._batchers: dict[asyncio.AbstractEventLoop, LoopBatcher] = {}
        # Taken for each batch handed over and by close(): no batch can be queued behind the stop.
        self._closing = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._seq = 0
        self._prefix = f"{socket.gethostname()}-{os.getpid()}"

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self._closed = False
        try:
            self.open_dir.mkdir(parents=True, exist_ok=True)
            self.sealed_dir.mkdir(parents=True, exist_ok=True)
            recover_orphans(self.open_dir, self.sealed_dir)
            self.healthy = os.access(self.open_dir, os.W_OK)
        except OSError as exc:
            self._fail(exc)
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what is queued, seal the open segment, stop the thread."""
        if self._thread is None:
            return
        with self._closing:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    # -- the request side --------------------------------------------------

    async def append(self, event: Event) -> None:
        """Resolve once ``event`` is on disk.

        Only an :class:`Event` is accepted: the type has no field that could hold
        an IP address or a user-agent string, so neither can reach a segment.
        """
        if type(event) is not Event:
            raise TypeError("the spool stores Event records only")
        line = encode(event)
        if self._pending >= self.max_pending:
            raise SpoolUnavailable("spool backlog is full")
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop) or self._batcher_for(loop)
        self._pending += 1
        await batcher.add(line)

    def _batcher_for(self, loop: asyncio.AbstractEventLoop) -> LoopBatcher:
        # Loops that are gone (a test's asyncio.run) leave nothing waiting: forget them.
        self._batchers = {lp: b for lp, b in self._batchers.items() if not lp.is_closed()}
        batcher = self._batchers[loop] = LoopBatcher(loop, self._hand_over, self.batch_events, self._settled)
        return batcher

    def _settled(self, events: int) -> None:
        self._pending -= events

    def _hand_over(self, batch: Batch) -> None:
        with self._closing:
            if not self._closed:
                self._queue.put(batch)
                return
        batch.done(SpoolUnavailable("spool is closed"))

    def ready(self) -> bool:
        return self.healthy and self._thread is not None and self._thread.is_alive()

    # -- the writer thread -------------------------------------------------

    def _run(self) -> None:
        stopping = False
        carry: object = None
        while not stopping:
            if carry is None:
                try:
                    item = self._queue.get(timeout=self._time_to_seal())
                except queue.Empty:
                    self._maybe_seal()
                    continue
            else:
                item, carry = carry, None
            # Batches queued meanwhile (several loops, or a batch at its cap) share one synchronous write.
            batches: list[Batch] = []
            events = 0
            while True:
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, Batch)
                if batches and events + item.events > self.batch_events:
                    carry = item
                    break
                batches.append(item)
                events += item.events
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batches:
                self._commit(batches, events)
            self._maybe_seal()
        self._seal()

    def _time_to_seal(self) -> float | None:
        if self._fd is None:
            return None
        return max(0.05, self._opened_at + self.segment_seconds - self.clock())

    def _open_segment(self) -> None:
        self._seq += 1
        name = f"{time.time_ns():020d}-{self._prefix}-{self._seq:06d}.jsonl"
        path = self.open_dir / name
        # O_DSYNC: each write returns once its bytes, and the file size that makes them readable,
        # are on disk (fdatasync's guarantee, the one a log needs; the timestamps fsync would add are
        # never read). One system call per group commit instead of write + fsync, and so one wait
        # fewer for the GIL on the writer's way back (under load, each such wait also stalls the
        # event loop while the threads switch).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_DSYNC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The directory entry must be durable too, or an fsynced event could
            # vanish with a file that was never linked after a crash.
            fsync_dir(self.open_dir)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd, self._path, self._size, self._opened_at = fd, path, 0, self.clock()

    def _commit(self, batches: list[Batch], events: int) -> None:
        data = batches[0].data if len(batches) == 1 else b"".join(b.data for b in batches)
        started = time.perf_counter()
        error: Exception | None = None
        try:
            if self._fd is None:
                self._open_segment()
            assert self._fd is not None
            view = memoryview(data)
            written = 0
            try:
                while written < len(data):
                    written += os.write(self._fd, view[written:])
            except OSError:
                self._abandon_segment()
                raise
            self._size += len(data)
            self.healthy = True
            self.last_error = None
        except OSError as exc:
            self._fail(exc)
            error = SpoolUnavailable(self.last_error or "spool write failed")
        if self.on_commit is not None and error is None:
            self.on_commit(events, time.perf_counter() - started)
        for batch in batches:
            batch.done(error)

    def _abandon_segment(self) -> None:
        """After a failed write the segment's tail is unknown: cut it back
        to the last committed size and seal what is known good."""
        fd, path = self._fd, self._path
        self._fd = self._path = None
        if fd is None or path is None:
            return
        try:
            os.ftruncate(fd, self._size)
            os.fsync(fd)
        except OSError:
            pass
        os.close(fd)
        if self._size == 0:
            path.unlink(missing_ok=True)
            return
        try:
            os.rename(path, self.sealed_dir / path.name)
        except OSError:
            pass  # left in open/: the next start recovers it (the lock is released)

    def _maybe_seal(self) -> None:
        if self._fd is None:
            return
        if self._size >= self.segment_bytes or self.clock() - self._opened_at >= self.segment_seconds:
            self._seal()

    def _seal(self) -> None:
        fd, path = self._fd, self._path
        if fd is None or path is None:
            return
        self._fd = self._path = None
        try:
            if self._size == 0:
                os.close(fd)
                path.unlink(missing_ok=True)
                return
            os.rename(path, self.sealed_dir / path.name)
            fsync_dir(self.sealed_dir)
            fsync_dir(self.open_dir)
            os.close(fd)  # closing releases the lock only after the rename
        except OSError as exc:
            self._fail(exc)
            try:
                os.close(fd)
            except OSError:
                pass

    def _fail(self, exc: OSError) -> None:
        self.healthy = False
        # strerror only: an OSError's full text can carry a path, never request data,
        # but keep the message short and predictable.
        self.last_error = exc.strerror or exc.__class__.__name__
        log.error("spool: %s", self.last_error)
