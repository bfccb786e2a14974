"""The lake on S3-compatible object storage, read and written through pyarrow's S3 filesystem.

Why pyarrow and not DuckDB's own S3 support: DuckDB reads S3 through its
``httpfs`` extension, which the ``duckdb`` wheel does not bundle and which DuckDB
downloads at run time from its own extension repository — a host this product
must not depend on (and cannot reach here). pyarrow's wheel ships an S3 client;
its filesystem is handed to DuckDB with ``register_filesystem`` (through fsspec's
``ArrowFSWrapper``) under the protocol ``lakes3://``, so every existing
``read_parquet($files)`` statement reads objects in place, with the same
partition pruning as on disk: a reader lists only the ``site=/day=`` prefixes of
the days it needs.

:class:`ObjectPath` lets the lake's code keep using ``Path`` operations: it is a
``PosixPath`` whose ``str()`` is the ``lakes3://bucket/key`` URL DuckDB reads, and
whose few filesystem methods the lake uses (list, read, exists, delete) go to
the object store. Each store gets its own subclass carrying its filesystem, so
there is no module-level state.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path, PosixPath
from typing import Any, ClassVar

import pyarrow.fs as pafs

from collector.schema import DROP_COUNTS_SUFFIX

PROTOCOL = "lakes3"


@dataclass(frozen=True, slots=True)
class S3Config:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    url_style: str = "path"
    connect_timeout: float = 3.0
    request_timeout: float = 30.0

    def filesystem(self) -> pafs.S3FileSystem:
        scheme = "https"
        endpoint = self.endpoint
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        return pafs.S3FileSystem(
            access_key=self.access_key or None,
            secret_key=self.secret_key or None,
            region=self.region,
            endpoint_override=endpoint or None,
            scheme=scheme,
            force_virtual_addressing=self.url_style == "vhost",
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
            # Retry briefly: a store that is down fails the run, and the next run redoes it.
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=2),
            allow_bucket_creation=True,  # root_path creates a missing bucket (self-hosted stores)
        )


def split_url(url: str) -> str:
    """``s3://bucket/prefix`` → ``bucket/prefix`` (no slashes at either end)."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    key = url.removeprefix("s3://").strip("/")
    if not key:
        raise ValueError("an s3:// URL needs a bucket")
    return key


class ObjectPath(PosixPath):
    """``/bucket/key`` in an object store; ``str()`` is the URL DuckDB reads."""

    fs: ClassVar[pafs.FileSystem]
    # Local directory for what must not live in the store: the writer lock, staging, the manifest.
    work: ClassVar[Path]

    @classmethod
    def bind(cls, fs: pafs.FileSystem, work: Path) -> type[ObjectPath]:
        return type("BoundObjectPath", (cls,), {"fs": fs, "work": work})

    @property
    def key(self) -> str:
        return "/".join(self.parts[1:])  # not as_posix(): that calls __str__

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __str__(self) -> str:
        return f"{PROTOCOL}://{self.key}"

    def __fspath__(self) -> str:
        # Never let os.* touch a local file that happens to share the key's name.
        raise TypeError(f"{self} is an object, not a local file")

    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.key)

    def exists(self, *, follow_symlinks: bool = True) -> bool:
        return bool(self._info().type != pafs.FileType.NotFound)

    def is_dir(self) -> bool:
        # Object stores have prefixes, not directories: one that has objects under it "exists".
        return bool(self._info().type == pafs.FileType.Directory)

    def is_file(self) -> bool:
        return bool(self._info().type == pafs.FileType.File)

    def entries(self) -> list[tuple[str, bool]]:
        """(name, is a prefix) of the direct children; [] if there are none."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.key, recursive=False, allow_not_found=True))
        except FileNotFoundError:
            return []
        return [(posixpath.basename(i.path), i.type == pafs.FileType.Directory) for i in infos]

    def sizes(self) -> dict[str, int]:
        """Bytes of each direct child object by name, from one listing (no request per object)."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.key, recursive=False, allow_not_found=True))
        except FileNotFoundError:
            return {}
        return {posixpath.basename(i.path): i.size or 0 for i in infos if i.type == pafs.FileType.File}

    def iterdir(self) -> Generator[ObjectPath, None, None]:
        for name, _ in self.entries():
            yield self / name

    def glob(self, pattern: str) -> Generator[ObjectPath, None, None]:
        import fnmatch

        if "/" in pattern:
            raise ValueError("ObjectPath.glob matches one level only")
        for name, _ in self.entries():
            if fnmatch.fnmatchcase(name, pattern):
                yield self / name

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.key) as f:
            data: bytes = f.read()
            return data

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        return None  # prefixes need no creating

    def rmdir(self) -> None:
        return None  # a prefix with no objects under it is gone by itself

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        """Size and modification time of an object (what retention needs); the rest is zero."""
        info = self._info()
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(str(self))
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        return os.stat_result((0o100600, 0, 0, 1, 0, 0, info.size or 0, mtime, mtime, mtime))

    def upload(self, src: str) -> None:
        """Put a local file here. One PUT (or a completed multipart upload) is atomic: readers
        see the whole object or none, so no temporary name and rename are needed."""
        pafs.copy_files(src, self.key, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs)
        # Checked, not trusted: with the store gone in the middle of an upload, arrow logged "Error
        # ignored when destroying file" for a lake file and ingest went on to delete the file's spool
        # segments (tests/scaleout/test_many_collectors.py, once). The caller deletes its source only
        # after this returns, so an object that is not there whole must raise here.
        info = self._info()
        if info.type != pafs.FileType.File or info.size != os.path.getsize(src):
            raise OSError(f"upload of {self.key} did not complete (the object is missing or short)")

    def download(self, dst: str) -> None:
        pafs.copy_files(self.key, dst, source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())

    def rmtree(self) -> None:
        try:
            self.fs.delete_dir(self.key)
        except FileNotFoundError:
            pass


def register(con: Any, fs: pafs.FileSystem) -> None:
    """Let a DuckDB connection read ``lakes3://bucket/key`` through ``fs``."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    class LakeFS(ArrowFSWrapper):  # type: ignore[misc]
        protocol = PROTOCOL
        # One instance per connection: fsspec's instance cache would share it across stores.
        cachable = False

        @classmethod
        def _strip_protocol(cls, path: Any) -> Any:
            if isinstance(path, str):
                return path.removeprefix(f"{PROTOCOL}://").rstrip("/")
            return path

    con.register_filesystem(LakeFS(fs))


def root_path(url: str, fs: pafs.FileSystem, work: Path) -> ObjectPath:
    bucket_key = split_url(url)
    bucket = bucket_key.split("/", 1)[0]
    try:
        fs.create_dir(bucket, recursive=False)  # no-op where it exists; a bucket is the store's, not ours
    except OSError:
        pass
    return ObjectPath.bind(fs, work)("/" + bucket_key)


class ShippedSpool:
    """Sealed segments that collectors without a shared disk put under ``s3://…/spool/``.

    Exactly once, like local segments: :meth:`fetch` copies each object into the
    local ``sealed/`` directory (temporary name, then rename) and leaves the object
    in place; ingest deletes it (:meth:`consumed`) only after the batch holding the
    segment is committed in the manifest. Because a collector that dies between
    its upload and deleting its local copy uploads the segment again, the names
    of consumed segments are also kept in a ledger for ``LEDGER_DAYS``: a segment
    shipped twice is ingested once.
    """

    LEDGER_DAYS = 7

    def __init__(self, url: str, fs: pafs.FileSystem, work: Path) -> None:
        self.root = ObjectPath.bind(fs, work)("/" + split_url(url))
        self.ledger_path = work / "shipped-consumed.tsv"

    def _ledger(self) -> dict[str, float]:
        out: dict[str, float] = {}
        try:
            lines = self.ledger_path.read_text().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            name, _, ts = line.partition("\t")
            try:
                out[name] = float(ts)
            except ValueError:
                continue  # a torn last line
        return out

    def fetch(self, sealed: Path) -> int:
        """Copy new shipped segments into ``sealed``; returns how many."""
        import os

        seen = self._ledger()
        sealed.mkdir(parents=True, exist_ok=True)
        fetched = 0
        for name, size in sorted(self.root.sizes().items()):
            if not name.endswith((".jsonl", DROP_COUNTS_SUFFIX)):  # segments, drop counts
                continue
            if name in seen:
                (self.root / name).unlink(missing_ok=True)  # shipped again after we ingested it
                continue
            if (sealed / name).exists():
                continue
            tmp = sealed / f".{name}.download"
            (self.root / name).download(str(tmp))
            if os.path.getsize(tmp) != size:  # checked, as uploads are: a short copy is never ingested
                tmp.unlink()
                raise OSError(f"download of {name} did not complete ({size} bytes listed)")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, sealed / name)
            fetched += 1
        return fetched

    def consumed(self, names: list[str], now: float) -> None:
        """After the manifest commit: remember the names, then delete the objects."""
        import os

        with open(self.ledger_path, "a", encoding="utf-8") as f:
            f.write("".join(f"{n}\t{now}\n" for n in names))
            f.flush()
            os.fsync(f.fileno())
        for name in names:
            (self.root / name).unlink(missing_ok=True)

    def prune_ledger(self, now: float) -> None:
        ledger = self._ledger()
        keep = {n: t for n, t in ledger.items() if now - t < self.LEDGER_DAYS * 86400}
        if len(keep) == len(ledger):
            return
        tmp = self.ledger_path.with_suffix(".tmp")
        tmp.write_text("".join(f"{n}\t{t}\n" for n, t in keep.items()))
        tmp.replace(self.ledger_path)
