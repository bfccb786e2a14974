from __future__ import annotations

import datetime as dt
import multiprocessing
import stat
from pathlib import Path

from collector.salts import SALT_BYTES, DayKeys, FileSaltStore, utc_day

DAY = 86400
T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_same_visitor_same_day_same_key_and_other_day_other_key(tmp_path: Path) -> None:
    clock = Clock(T0)
    keys = DayKeys(FileSaltStore(tmp_path / "salts"), clock=clock)
    a = keys.key(T0, "s.example", "203.0.113.9", "UA")
    assert keys.key(T0 + 3600, "s.example", "203.0.113.9", "UA") == a
    assert keys.key(T0, "other.example", "203.0.113.9", "UA") != a  # not linkable across sites
    assert keys.key(T0, "s.example", "203.0.113.10", "UA") != a
    clock.now = T0 + DAY
    assert keys.key(T0 + DAY, "s.example", "203.0.113.9", "UA") != a
    assert 0 <= a < 2**64


def test_salt_is_random_not_derived(tmp_path: Path) -> None:
    # Two independent stores for the same day must not agree: nothing derives the salt.
    s1 = FileSaltStore(tmp_path / "a").salt_for(utc_day(T0))
    s2 = FileSaltStore(tmp_path / "b").salt_for(utc_day(T0))
    assert s1 != s2 and len(s1) == SALT_BYTES >= 16


def test_salt_files_are_private(tmp_path: Path) -> None:
    store = FileSaltStore(tmp_path / "salts")
    store.salt_for(utc_day(T0))
    assert stat.S_IMODE((tmp_path / "salts").stat().st_mode) == 0o700
    for f in (tmp_path / "salts").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_rotation_destroys_salts_within_48_hours(tmp_path: Path) -> None:
    clock = Clock(T0)
    store = FileSaltStore(tmp_path / "salts")
    keys = DayKeys(store, clock=clock)
    keys.rotate()
    first_day = utc_day(T0)
    assert store.path_for(first_day).exists()
    clock.now = T0 + DAY  # the next day: yesterday's salt may stay (requests straddling midnight)
    keys.rotate()
    assert store.path_for(first_day).exists()
    clock.now = T0 + 2 * DAY - 12 * 3600  # 00:00 two days later: 48 h after the salt was made
    keys.rotate()
    assert not store.path_for(first_day).exists()
    assert sorted(p.name for p in (tmp_path / "salts").iterdir()) == [
        f"{(first_day + dt.timedelta(days=1)).isoformat()}.salt",
        f"{(first_day + dt.timedelta(days=2)).isoformat()}.salt",
    ]
    # And the process forgot it too: a key for that day now comes from a fresh salt.
    assert first_day not in keys._by_day


def _salt_in_child(directory: str, day: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(FileSaltStore(Path(directory)).salt_for(dt.date.fromisoformat(day)))


def test_workers_on_one_host_share_the_day_salt(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_salt_in_child, args=(str(tmp_path / "s"), "2026-11-26", out)) for _ in range(8)]
    for p in procs:
        p.start()
    salts = {out.get(timeout=20) for _ in procs}
    for p in procs:
        p.join()
    assert len(salts) == 1
    assert not list((tmp_path / "s").glob("*.tmp"))
