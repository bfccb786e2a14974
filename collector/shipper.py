"""Ship sealed spool segments to S3-compatible storage, for an aggregator with no shared disk.

A sealed segment is complete and immutable, so shipping is: upload it under the
same name (one PUT: the object appears whole or not at all), then delete the
local file. Until the upload succeeds the segment stays in ``sealed/``: with the
store down the collector keeps accepting events, the local spool grows, and the
backlog leaves as soon as the store is back. A crash between the upload and the
delete ships the segment twice; the aggregator keeps a ledger of the segment
names it consumed, so it still ingests it once (aggregator/objectstore.py).

Segments hold de-identified events only (the ``Event`` type has no field for an
IP or a UA); the bucket is still private to collectors and the aggregator.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from collector.schema import DROP_COUNTS_SUFFIX

log = logging.getLogger("collector.shipper")


def s3_filesystem(endpoint: str, access_key: str, secret_key: str, region: str, url_style: str) -> Any:
    # pyarrow is the optional `s3` extra: imported only when shipping is configured.
    import pyarrow.fs as pafs

    scheme, _, host = endpoint.rpartition("://")
    return pafs.S3FileSystem(
        access_key=access_key or None,
        secret_key=secret_key or None,
        region=region,
        endpoint_override=host or None,
        scheme=scheme or "https",
        force_virtual_addressing=url_style == "vhost",
        connect_timeout=2,
        request_timeout=10,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        allow_bucket_creation=True,
    )


class Shipper:
    def __init__(self, sealed_dir: Path, url: str, fs: Any, interval: float = 1.0) -> None:
        self.sealed_dir = sealed_dir
        self.prefix = url.removeprefix("s3://").strip("/")
        self.fs = fs
        self.interval = interval
        self.shipped = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spool-shipper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.wait(backoff):
            try:
                self.ship_once()
                backoff = self.interval
                self.last_error = None
            except OSError as exc:
                # The store is unreachable: keep the segments, try again later (bounded backoff).
                self.last_error = exc.__class__.__name__
                log.warning("shipping spool segments failed (%s); keeping them locally", self.last_error)
                backoff = min(backoff * 2, 30.0)

    def ship_once(self, *, until_stopped: bool = True) -> int:
        """Ship every sealed segment there is now; ``until_stopped=False`` ignores :meth:`close`."""
        import pyarrow.fs as pafs

        n = 0
        # Event segments and the workers' drop counts (collector/dropcounts.py) alike.
        found = [*self.sealed_dir.glob("*.jsonl"), *self.sealed_dir.glob("*" + DROP_COUNTS_SUFFIX)]
        names = sorted(p.name for p in found) if self.sealed_dir.is_dir() else []
        for name in names:
            if until_stopped and self._stop.is_set():
                break
            path = self.sealed_dir / name
            key = f"{self.prefix}/{name}"
            try:
                size = path.stat().st_size
                pafs.copy_files(str(path), key, source_filesystem=pafs.LocalFileSystem(),
                                destination_filesystem=self.fs)  # fmt: skip
            except FileNotFoundError:
                continue  # another worker of this host shipped it meanwhile
            # Checked, not trusted, before the segment is deleted here: with the store gone in the middle of
            # an upload, arrow can log "Error ignored when destroying file" and return as if it had written
            # (aggregator/objectstore.py saw it for a lake file). Not there whole: kept, shipped again later.
            info = self.fs.get_file_info(key)
            if info.type != pafs.FileType.File or info.size != size:
                raise OSError(f"shipping {name} did not complete (the object is missing or short)")
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            n += 1
        if n:
            fd = os.open(self.sealed_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.shipped += n
        return n


def wait_until_shipped(shipper: Shipper, timeout: float) -> bool:
    """At shutdown: give the last sealed segments a chance to leave (they stay on disk otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if shipper.ship_once(until_stopped=False) == 0:
                return True
        except OSError:
            return False
    return False
