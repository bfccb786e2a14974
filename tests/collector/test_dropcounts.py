"""Per-worker drop counts (collector/dropcounts.py): written every interval and at shutdown, kept on a failed write."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
from pathlib import Path
from typing import get_args

from collector.dropcounts import DropCounts
from collector.reasons import DROP_KINDS, DROP_REASONS, DropKind, DropReason
from collector.schema import DROP_COUNT_KINDS, DROP_COUNT_REASONS, DROP_COUNTS_SUFFIX, DropCount
from tests import web
from tests.conftest import CHROME_UA, running_collector, wait_until

DAY = 20_413  # 2025-11-21, as a UTC day number
TS = DAY * 86400 + 3600


def records(sealed: Path) -> list[DropCount]:
    return [
        DropCount.from_record(json.loads(line))
        for path in sorted(sealed.glob("*" + DROP_COUNTS_SUFFIX))
        for line in path.read_bytes().splitlines()
    ]


def test_the_published_codes_are_the_collectors_reasons_and_kinds() -> None:
    # collector.schema is standard library only and cannot import collector.reasons: the two lists must agree.
    assert DROP_COUNT_REASONS == DROP_REASONS == get_args(DropReason)
    assert DROP_COUNT_KINDS == DROP_KINDS and set(DROP_KINDS) == {
        k for a in get_args(DropKind) for k in (get_args(a) or (a,))
    }


def test_a_flush_writes_one_sealed_file_of_summed_counts(tmp_path: Path) -> None:
    counts = DropCounts(tmp_path)
    for _ in range(3):
        counts.add("www.onecloud.example", TS, "bot", "crawler")
    counts.add("www.onecloud.example", TS + 86400, "bot", "crawler")  # the next UTC day
    counts.add("www.onecloud.example", TS, "opt_out")
    counts.add(None, TS, "unknown_site")
    asyncio.run(counts.flush())
    assert sorted(records(tmp_path / "sealed"), key=lambda c: (c.day, c.reason, c.site or "")) == [
        DropCount("www.onecloud.example", "2025-11-21", "bot", "crawler", 3),
        DropCount("www.onecloud.example", "2025-11-21", "opt_out", None, 1),
        DropCount(None, "2025-11-21", "unknown_site", None, 1),
        DropCount("www.onecloud.example", "2025-11-22", "bot", "crawler", 1),
    ]
    assert not list((tmp_path / "open").iterdir())  # the temporary file became the sealed one
    asyncio.run(counts.flush())  # nothing new: no empty file
    assert len(list((tmp_path / "sealed").iterdir())) == 1


def test_a_failed_write_keeps_the_counts_for_the_next_one(tmp_path: Path) -> None:
    (tmp_path / "sealed").write_text("not a directory")  # every write fails, for real
    counts = DropCounts(tmp_path)
    counts.add("www.onecloud.example", TS, "bot", "client")
    asyncio.run(counts.flush())
    counts.add("www.onecloud.example", TS, "bot", "client")
    (tmp_path / "sealed").unlink()
    asyncio.run(counts.flush())
    assert records(tmp_path / "sealed") == [DropCount("www.onecloud.example", "2025-11-21", "bot", "client", 2)]


def test_counts_are_written_every_interval_without_a_shutdown(tmp_path: Path) -> None:
    counts = DropCounts(tmp_path)

    async def scenario() -> None:
        task = asyncio.create_task(counts.run(interval=0.01))
        counts.add("www.onecloud.example", TS, "localhost")
        while not list((tmp_path / "sealed").glob("*" + DROP_COUNTS_SUFFIX)):
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert records(tmp_path / "sealed") == [DropCount("www.onecloud.example", "2025-11-21", "localhost", None, 1)]


def test_start_removes_a_dead_writers_temporary_file_not_a_live_ones(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    dead = tmp_path / "open" / f"1-h-1-000001{DROP_COUNTS_SUFFIX}.tmp"
    dead.write_text('{"v": 1, "site": "www.onecl')
    live = tmp_path / "open" / f"2-h-2-000001{DROP_COUNTS_SUFFIX}.tmp"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        DropCounts(tmp_path).start()
        assert not dead.exists() and live.exists()
    finally:
        os.close(fd)


def test_every_worker_writes_its_counts_at_shutdown_and_they_match_metrics(
    tmp_path: Path, collector_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    bot = "curl/8.5.0"
    with running_collector(data, collector_env, workers=2) as server:
        with web.client(base_url=server.url, timeout=10) as client:
            for i in range(40):
                # A new connection each time, so both workers answer some.
                r = web.post(
                    server.url + "/api/event",
                    json={"n": "pageview", "u": "https://www.onecloud.example/", "d": "www.onecloud.example"},
                    headers={"User-Agent": bot if i % 4 else CHROME_UA, "X-Forwarded-For": f"81.2.69.{i}"},
                )
                assert r.status_code == 202
            metrics = client.get("/metrics").text
    dropped = int(float(re.search(r'analytics_bots_dropped_total\{kind="client"\} (\S+)', metrics).group(1)))  # type: ignore[union-attr]
    assert dropped == 30
    sealed = data / "spool" / "sealed"
    wait_until("the drop counts", lambda: bool(list(sealed.glob("*" + DROP_COUNTS_SUFFIX))))
    got = records(sealed)
    assert sum(c.events for c in got) == 30
    assert {(c.site, c.reason, c.kind) for c in got} == {("www.onecloud.example", "bot", "client")}
    assert not list((data / "spool" / "open").glob("*" + DROP_COUNTS_SUFFIX + ".tmp"))
