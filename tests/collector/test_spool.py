from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.schema import Event
from collector.spool import Spool, SpoolUnavailable, recover_orphans
from tests.conftest import small_tmpfs
from tests.events import make_event as event


def make_event(path: str = "/", **changes: object) -> Event:
    return event(path=path, **changes)


def _lines(directory: Path) -> list[bytes]:
    out: list[bytes] = []
    for seg in sorted(directory.glob("*.jsonl")):
        out.extend(seg.read_bytes().splitlines())
    return out


async def _append_many(spool: Spool, n: int, tag: str = "e") -> None:
    await asyncio.gather(*(spool.append(make_event(f"/{tag}/{i}")) for i in range(n)))


def test_group_commit_makes_events_durable_before_resolving(tmp_path: Path) -> None:
    commits: list[int] = []
    spool = Spool(tmp_path, segment_seconds=60, on_commit=lambda n, s: commits.append(n))
    spool.start()
    try:
        asyncio.run(_append_many(spool, 500))
        # Every awaited append is already in the open segment, before any seal.
        assert len(_lines(tmp_path / "open")) == 500
        assert sum(commits) == 500
        assert len(commits) < 500  # many events shared one fsync
    finally:
        spool.close()
    assert len(_lines(tmp_path / "sealed")) == 500
    assert not list((tmp_path / "open").iterdir())


def test_rotation_by_size_and_age(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_seconds=0.3, segment_bytes=2000, batch_events=5)
    spool.start()
    try:
        asyncio.run(_append_many(spool, 500))
        sealed = list((tmp_path / "sealed").glob("*.jsonl"))
        assert len(sealed) >= 10  # ~200 KB of events over 2 KB segments
        # A segment is sealed once it passes the size, i.e. after at most one more batch.
        assert all(seg.stat().st_size < 2000 + 5 * 600 for seg in sealed)
        asyncio.run(_append_many(spool, 1, "late"))

        async def wait_sealed() -> None:
            for _ in range(100):
                if not list((tmp_path / "open").glob("*.jsonl")):
                    return
                await asyncio.sleep(0.05)

        asyncio.run(wait_sealed())
        assert not list((tmp_path / "open").glob("*.jsonl")), "an idle segment is sealed by age"
    finally:
        spool.close()
    assert len(_lines(tmp_path / "sealed")) == 501


def test_recovery_cuts_torn_line_and_seals(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir(parents=True)
    (tmp_path / "sealed").mkdir()
    seg = tmp_path / "open" / "00000000000000000001-host-1-000001.jsonl"
    seg.write_bytes(b'{"a":1}\n{"a":2}\n{"a":')
    empty = tmp_path / "open" / "00000000000000000002-host-1-000002.jsonl"
    empty.write_bytes(b'{"tor')
    assert recover_orphans(tmp_path / "open", tmp_path / "sealed") == 1
    assert (tmp_path / "sealed" / seg.name).read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert not empty.exists()


def test_recovery_leaves_a_live_writers_segment_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_seconds=60)
    spool.start()
    try:
        asyncio.run(_append_many(spool, 3))
        assert recover_orphans(tmp_path / "open", tmp_path / "sealed") == 0
        assert len(list((tmp_path / "open").glob("*.jsonl"))) == 1
    finally:
        spool.close()


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "mnt", "64k") as mnt:
        yield mnt


def test_full_disk_is_503_never_a_silent_drop(tiny_fs: Path) -> None:
    spool = Spool(tiny_fs / "spool", segment_seconds=60, segment_bytes=1 << 20)
    spool.start()
    ok = failed = 0

    async def fill() -> None:
        nonlocal ok, failed
        event = make_event("/" + "x" * 1000)
        for _ in range(200):
            try:
                await spool.append(event)
                ok += 1
            except SpoolUnavailable:
                failed += 1

    try:
        asyncio.run(fill())
        assert failed > 0 and ok > 0
        assert not spool.ready()
    finally:
        spool.close()
    # Exactly the acknowledged events are on disk, whole.
    stored = _lines(tiny_fs / "spool" / "sealed") + _lines(tiny_fs / "spool" / "open")
    assert len(stored) == ok
    assert all(line.endswith(b"}") and line.startswith(b'{"v":2') for line in stored)


def test_read_only_disk_then_recovery(tiny_fs: Path) -> None:
    spool = Spool(tiny_fs / "spool", segment_seconds=60)
    spool.start()
    try:
        asyncio.run(_append_many(spool, 2))
        spool_seal_and_remount_ro(spool, tiny_fs)
        with pytest.raises(SpoolUnavailable):
            asyncio.run(_append_many(spool, 1))
        assert not spool.ready()
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_fs)], check=True)
        asyncio.run(_append_many(spool, 1, "after"))
        assert spool.ready()
    finally:
        spool.close()
    assert len(_lines(tiny_fs / "spool" / "sealed")) == 3


def spool_seal_and_remount_ro(spool: Spool, mnt: Path) -> None:
    # Seal the open segment first (as happens every few seconds), then lose write access.
    spool.close()
    spool.start()
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)


def test_only_events_are_accepted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.start()
    try:
        with pytest.raises(TypeError):
            asyncio.run(spool.append(b'{"ip":"203.0.113.9"}\n'))  # type: ignore[arg-type]
    finally:
        spool.close()
    assert not list((tmp_path / "sealed").glob("*.jsonl"))


def test_an_event_after_close_is_refused_not_left_waiting(tmp_path: Path) -> None:
    # Before the batcher, such an append was queued behind the writer's stop and its future
    # never resolved: the request hung instead of getting a 503.
    spool = Spool(tmp_path, segment_seconds=60)
    spool.start()
    asyncio.run(_append_many(spool, 3))
    spool.close()
    with pytest.raises(SpoolUnavailable):
        asyncio.run(_append_many(spool, 1, "late"))
    assert len(_lines(tmp_path / "sealed")) == 3


def test_batches_of_several_event_loops_are_each_answered(tmp_path: Path) -> None:
    # One batcher per event loop; the writer answers every loop's batches, in order.
    spool = Spool(tmp_path, segment_seconds=60, batch_events=7)
    spool.start()
    try:
        for rnd in range(3):
            asyncio.run(_append_many(spool, 50, f"loop{rnd}"))
    finally:
        spool.close()
    lines = _lines(tmp_path / "sealed")
    assert len(lines) == 150 and len(set(lines)) == 150


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"props": (("plan", "Business"), ("é", '✓ \u2028 "q"')), "engaged_ms": 1500, "scroll_depth": 40},
        {"referrer_source": "Google", "referrer_host": "www.google.com", "isp": 'Télécom \\ "x"', "asn": 3215},
        {"day_key": 2**64 - 1, "path": "/ünïcode/\U0001f600", "os_version": "", "props": ()},
    ],
)
def test_a_spool_line_is_the_record_as_json(changes: dict[str, object]) -> None:
    # The line is built from the dataclass directly (no dict); it must be the record's JSON, byte for byte.
    import orjson

    from collector.schema import parse_line
    from collector.spool import encode

    ev = make_event(**changes)
    line = encode(ev)
    assert line == orjson.dumps(ev.to_record(), option=orjson.OPT_APPEND_NEWLINE)
    assert parse_line(line) == ev


def test_segments_are_written_synchronously(tmp_path: Path) -> None:
    # O_DSYNC: a write returns once it is on disk, so no fsync has to follow it (collector/spool.py).
    import os

    spool = Spool(tmp_path, segment_seconds=60)
    spool.start()
    try:
        asyncio.run(_append_many(spool, 3))
        (segment,) = (tmp_path / "open").glob("*.jsonl")
        flags = None
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target == str(segment):
                info = Path(f"/proc/self/fdinfo/{fd}").read_text()
                flags = int(info.split("flags:")[1].split()[0], 8)
        assert flags is not None, "the open segment is not held open by the spool"
        assert flags & os.O_DSYNC == os.O_DSYNC
    finally:
        spool.close()
