"""The PostgreSQL salt store against a real server (started by the test, as in CI)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.salts import SALT_BYTES, DayKeys, SaltUnavailable, utc_day
from collector.saltstore_pg import TABLE, PgSaltStore
from tests.scaleout.servers import Postgres, postgres_server

DAY = 86400
T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def dsn(pg: Postgres) -> str:
    return pg.new_salt_db("salts_" + uuid.uuid4().hex[:8])


def _salt_in_child(
    dsn: str, day: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue[bytes]
) -> None:
    store = PgSaltStore(dsn)
    start.wait()
    out.put(store.salt_for(dt.date.fromisoformat(day)))


def test_concurrent_creation_by_many_processes_yields_one_salt(dsn: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    out: multiprocessing.Queue[bytes] = ctx.Queue()
    procs = [ctx.Process(target=_salt_in_child, args=(dsn, "2026-11-26", start, out)) for _ in range(8)]
    for p in procs:
        p.start()
    start.set()  # all of them race for the empty table (and its CREATE TABLE)
    salts = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(salts) == 1
    (salt,) = salts
    assert len(salt) == SALT_BYTES


def test_salt_is_random_per_day_and_per_store(pg: Postgres, dsn: str) -> None:
    store = PgSaltStore(dsn)
    day = utc_day(T0)
    a = store.salt_for(day)
    assert store.salt_for(day) == a
    assert store.salt_for(day + dt.timedelta(days=1)) != a
    # Another, independent database for the same day: nothing derives the salt.
    other = PgSaltStore(pg.new_salt_db("salts_" + uuid.uuid4().hex[:8]))
    assert other.salt_for(day) != a


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rotation_and_purge_with_injected_clock(pg: Postgres, dsn: str) -> None:
    store = PgSaltStore(dsn)
    clock = Clock(T0)
    keys = DayKeys(store, clock=clock)
    keys.rotate()
    day0 = utc_day(T0)
    k0 = keys.key(T0, "s.example", "203.0.113.9", "UA")
    clock.now = T0 + DAY
    keys.rotate()  # midnight passed: a new salt, yesterday's kept for straddling requests
    assert store.days() == [day0, day0 + dt.timedelta(days=1)]
    assert keys.key(T0 + DAY, "s.example", "203.0.113.9", "UA") != k0
    clock.now = T0 + 2 * DAY
    keys.rotate()  # day0's salt is now destroyed: at most 48 h after its day began
    assert store.days() == [day0 + dt.timedelta(days=1), day0 + dt.timedelta(days=2)]
    db = dsn.rsplit("/", 1)[1]
    assert pg.psql(f"SELECT count(*) FROM {TABLE} WHERE day = '{day0}'", db).strip() == "0"


def test_tomorrows_salt_is_loaded_before_midnight_so_no_event_is_refused(pg: Postgres, dsn: str) -> None:
    store = PgSaltStore(dsn)
    midnight = (T0 // DAY + 1) * DAY
    clock = Clock(midnight - 11 * 60)
    keys = DayKeys(store, clock=clock)
    today = utc_day(T0)
    keys.rotate(midnight - DAY - 60)  # yesterday 23:59, then today 23:49: yesterday's salt is still kept
    keys.rotate()
    assert store.days() == [today - dt.timedelta(days=1), today]
    clock.now = midnight - 10 * 60 - 20
    keys.rotate()  # 23:49:40: yesterday's salt is destroyed before tomorrow's is drawn (< 48 h of life)
    assert store.days() == [today]
    clock.now = midnight - 9 * 60
    keys.rotate()  # 23:51: tomorrow's is drawn now, in the housekeeping thread
    assert store.days() == [today, today + dt.timedelta(days=1)]
    # 00:00:01: the request path (never blocking on a network store) finds it in memory.
    clock.now = midnight + 1
    k1 = keys.key(midnight + 1, "s.example", "203.0.113.9", "UA")
    assert k1 != keys.key(midnight - 1, "s.example", "203.0.113.9", "UA")  # still a different salt per day
    # Another collector gets the same salt for the new day (one row per day, first writer wins).
    other = DayKeys(PgSaltStore(dsn), clock=Clock(midnight + 1))
    other.rotate()
    assert other.key(midnight + 1, "s.example", "203.0.113.9", "UA") == k1


def test_outage_refuses_instead_of_blocking_or_inventing_a_salt(pg: Postgres) -> None:
    # Nothing listens on this DSN's port: the store fails fast with SaltUnavailable.
    from tests.conftest import free_port

    store = PgSaltStore(f"postgresql://nobody:x@127.0.0.1:{free_port()}/none", connect_timeout=1)
    keys = DayKeys(store, clock=Clock(T0))
    with pytest.raises(SaltUnavailable):
        keys.key(T0, "s.example", "203.0.113.9", "UA")  # never blocks: a background fetch starts
    with pytest.raises(SaltUnavailable):
        keys.rotate()


def test_new_day_without_a_shared_salt_is_503_never_a_private_key(pg: Postgres, dsn: str, tmp_path: Path) -> None:
    import asyncio

    import httpx

    from collector.app import create_app
    from collector.settings import Settings

    clock = Clock(T0)
    settings = Settings(data_dir=tmp_path / "data", salt_store="postgres", salt_dsn=dsn,
                        sites=("www.onecloud.example",))  # fmt: skip
    body = b'{"n":"pageview","u":"https://www.onecloud.example/","d":"www.onecloud.example"}'
    headers = {"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}
    db = dsn.rsplit("/", 1)[1]

    async def scenario() -> None:
        app = create_app(settings, clock=clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
            async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
                assert (await client.post("/api/event", content=body, headers=headers)).status_code == 202
                # The store loses its table (an operator's mistake): no salt can be had for tomorrow.
                pg.psql(f"ALTER TABLE {TABLE} RENAME TO gone", db)
                clock.now = T0 + DAY
                for _ in range(3):
                    r = await client.post("/api/event", content=body, headers=headers)
                    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
                    await asyncio.sleep(0.2)
                assert 'reason="unavailable"' in (await client.get("/metrics")).text
                pg.psql(f"ALTER TABLE gone RENAME TO {TABLE}", db)
                deadline = time.monotonic() + 10
                while (status := (await client.post("/api/event", content=body, headers=headers)).status_code) == 503:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                assert status == 202

    asyncio.run(scenario())
    assert not (tmp_path / "data" / "salts").exists()  # no local salt was ever made up
