"""Segments a dead writer left in ``open/``: cut the torn last line, seal the rest (see :mod:`collector.spool`)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_orphans(open_dir: Path, sealed_dir: Path) -> int:
    """Seal segments left by dead writers; returns how many were recovered."""
    recovered = 0
    if not open_dir.is_dir():
        return 0
    for path in sorted(open_dir.glob("*.jsonl")):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer owns it
            if not path.exists():
                continue  # sealed by its owner between our glob and our lock
            size = os.fstat(fd).st_size
            keep = _complete_length(fd, size)
            if keep != size:
                # A torn last line was never acknowledged (the fsync had not returned).
                os.ftruncate(fd, keep)
                os.fsync(fd)
            if keep == 0:
                path.unlink()
            else:
                os.rename(path, sealed_dir / path.name)
                recovered += 1
        finally:
            os.close(fd)
    if recovered:
        fsync_dir(sealed_dir)
    fsync_dir(open_dir)
    return recovered


def _complete_length(fd: int, size: int) -> int:
    """Length of the file up to and including its last newline."""
    if size == 0:
        return 0
    block = 65536
    pos = size
    while pos > 0:
        start = max(0, pos - block)
        chunk = os.pread(fd, pos - start, start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0
