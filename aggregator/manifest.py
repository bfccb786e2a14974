"""The ingest manifest: an fsynced JSON-lines log of committed batches.

A batch is committed the moment its record is durably appended here; the
Parquet files it lists are then published and its spool segments deleted. A
record is only needed while some of that work may still be undone after a
crash, so :meth:`Manifest.truncate` empties the log once recovery has finished
every committed batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aggregator.lake import fsync_dir


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch: str
    segments: tuple[str, ...]
    # (path relative to the batch's staging dir, path relative to the lake root)
    files: tuple[tuple[str, str], ...]
    events: int
    quarantined: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "batch": self.batch,
                "segments": list(self.segments),
                "files": [list(f) for f in self.files],
                "events": self.events,
                "quarantined": self.quarantined,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchRecord:
        return cls(
            batch=str(data["batch"]),
            segments=tuple(str(s) for s in data["segments"]),
            files=tuple((str(a), str(b)) for a, b in data["files"]),
            events=int(data["events"]),
            quarantined=int(data["quarantined"]),
        )


@dataclass(slots=True)
class Manifest:
    path: Path
    batches: dict[str, BatchRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        manifest = cls(path)
        if not path.exists():
            return manifest
        for line in path.read_bytes().splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                # Only the last line can be torn (a crash during append): that
                # batch never committed, exactly like a batch with no record.
                continue
            record = BatchRecord.from_json(data)
            manifest.batches[record.batch] = record
        return manifest

    def commit(self, record: BatchRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                # A torn last line from an earlier crash must not swallow this record.
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(fd, b"\n")
            os.write(fd, record.to_json().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.path.parent)
        self.batches[record.batch] = record

    def truncate(self) -> None:
        """Forget every batch (call only when all of them are fully applied)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(b"")
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self.batches.clear()
