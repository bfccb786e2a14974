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


def test_day_keys_are_keyed_blake2b_of_the_day_salt_across_midnight(tmp_path: Path) -> None:
    # key() keeps the day and a keyed hasher between calls; its answers must stay the plain formula's.
    import hashlib

    clock = Clock(T0)
    store = FileSaltStore(tmp_path / "salts")
    keys = DayKeys(store, clock=clock)

    def reference(ts: float, ip: str) -> int:
        msg = f"9:s.example|{len(ip)}:{ip}|UA".encode()
        salt = store.salt_for(utc_day(ts))
        return int.from_bytes(hashlib.blake2b(msg, key=salt, digest_size=8).digest(), "big")

    midnight = (T0 // DAY + 1) * DAY
    for ts in (T0, midnight - 1, midnight, midnight - 1, midnight + 1, T0):
        clock.now = max(clock.now, ts)
        assert keys.key(ts, "s.example", "203.0.113.9", "UA") == reference(ts, "203.0.113.9")
    assert keys.key(midnight, "s.example", "2001:db8::1", "UA") == reference(midnight, "2001:db8::1")


def test_rotation_drops_the_hasher_keyed_with_a_destroyed_salt(tmp_path: Path) -> None:
    clock = Clock(T0)
    store = FileSaltStore(tmp_path / "salts")
    keys = DayKeys(store, clock=clock)
    keys.rotate()
    keys.key(T0, "s.example", "203.0.113.9", "UA")  # the last key made used the first day's salt
    clock.now = T0 + 2 * DAY - 12 * 3600  # 48 h later: that salt is destroyed...
    keys.rotate()
    assert utc_day(T0) not in keys._by_day
    # ...and nothing keyed with it is left in the process either.
    kept = keys._keyed
    assert kept is None or any(kept[0] is salt for salt in keys._by_day.values())
