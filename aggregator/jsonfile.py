"""Small JSON files shared between the dashboards (writer) and the aggregator (reader), written atomically.

Annotations and alert rules are written by the dashboards (admins edit them
there) and read by the nightly report and by ``ingest --follow``. The
aggregator must not import the dashboards, and the dashboards' SQLite file is
theirs, so the hand-over is a file in the data directory: written to a
temporary name, fsynced and renamed, so a reader sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: A shared file larger than this is not read (a sane bound on what admins can write).
MAX_BYTES = 4 * 1024 * 1024


class SharedFileError(ValueError):
    """A shared file exists but cannot be used (not JSON, too large, wrong shape)."""


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> Any | None:
    """The file's content, or None when it does not exist."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(raw) > MAX_BYTES:
        raise SharedFileError(f"{path.name} is larger than {MAX_BYTES} bytes")
    try:
        return json.loads(raw)
    except ValueError:
        raise SharedFileError(f"{path.name} is not valid JSON") from None
