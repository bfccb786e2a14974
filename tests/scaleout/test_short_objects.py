"""An object store that accepts a write and keeps less (arrow did, once, with the store killed mid-upload).

Neither the collector's shipper nor ingest's fetch of shipped segments may trust a copy: a segment is deleted
from the collector's disk only once the whole object is in the store, and a shipped segment is handed to
ingest only once the whole object is on local disk. The store here is a local directory behind pyarrow's
``PyFileSystem``, whose writes (or reads) silently lose the second half of the bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from aggregator.objectstore import ShippedSpool
from collector.shipper import Shipper
from collector.spool import encode
from tests.events import make_event


class _Half(io.RawIOBase):
    """A file that says it took (or gave) every byte and keeps only the first half of each chunk."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.raw.write(data[: len(data) // 2])
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.raw.read(size)
        return data[: len(data) // 2]

    def close(self) -> None:
        self.raw.close()
        super().close()


class ShortStore(pafs.FileSystemHandler):  # type: ignore[misc]
    """A directory as an object store; ``short`` ("write" or "read") loses half of what passes that way."""

    def __init__(self, root: Path, short: str) -> None:
        self.fs = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
        self.short = short

    def get_type_name(self) -> str:
        return "short"

    def normalize_path(self, path: str) -> str:
        return path

    def equals(self, other: Any) -> bool:
        return other is self

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(paths)  # type: ignore[no-any-return]

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(selector)  # type: ignore[no-any-return]

    def create_dir(self, path: str, recursive: bool) -> None:
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        self.fs.delete_dir_contents("", accept_root_dir=True)

    def delete_file(self, path: str) -> None:
        self.fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.fs.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        f = self.fs.open_input_stream(path)
        return pa.PythonFile(_Half(f), mode="r") if self.short == "read" else f

    def open_input_file(self, path: str) -> Any:
        return self.open_input_stream(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        self.fs.create_dir(path.rpartition("/")[0], recursive=True)
        f = self.fs.open_output_stream(path)
        return pa.PythonFile(_Half(f), mode="w") if self.short == "write" else f

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise NotImplementedError


def _segment(sealed: Path) -> Path:
    sealed.mkdir(parents=True)
    seg = sealed / "01-host-1-000001.jsonl"
    seg.write_bytes(b"".join(encode(make_event(site="a.example", ts=1_790_000_000 + i, day_key=i)) for i in range(50)))
    return seg


def test_a_segment_the_store_kept_short_is_not_deleted_and_ships_again(tmp_path: Path) -> None:
    seg = _segment(tmp_path / "sealed")
    whole = seg.read_bytes()
    short = pafs.PyFileSystem(ShortStore(_mkdir(tmp_path / "store"), "write"))
    with pytest.raises(OSError, match="did not complete"):
        Shipper(seg.parent, "s3://spool/run", short).ship_once()
    assert seg.read_bytes() == whole  # still on the collector's disk
    good = pafs.PyFileSystem(ShortStore(tmp_path / "store", "none"))
    assert Shipper(seg.parent, "s3://spool/run", good).ship_once() == 1
    assert not seg.exists() and (tmp_path / "store" / "spool" / "run" / seg.name).read_bytes() == whole


def test_a_shipped_segment_read_back_short_is_not_handed_to_ingest(tmp_path: Path) -> None:
    seg = _segment(tmp_path / "collector")
    store = _mkdir(tmp_path / "store" / "spool" / "run")
    (store / seg.name).write_bytes(seg.read_bytes())
    sealed = tmp_path / "agg" / "sealed"
    short = ShippedSpool("s3://spool/run", pafs.PyFileSystem(ShortStore(tmp_path / "store", "read")), tmp_path)
    with pytest.raises(OSError, match="did not complete"):
        short.fetch(sealed)
    assert not list(sealed.iterdir())  # nothing to ingest, not even the partial download
    good = ShippedSpool("s3://spool/run", pafs.PyFileSystem(ShortStore(tmp_path / "store", "none")), tmp_path)
    assert good.fetch(sealed) == 1
    assert (sealed / seg.name).read_bytes() == seg.read_bytes()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
