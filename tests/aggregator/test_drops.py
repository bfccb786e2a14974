"""The drop-count table: summed exactly once by ingest (also across kills), bad records quarantined, purged by age."""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from aggregator.drops import dropped
from aggregator.ingest import FAILPOINTS, Ingester
from aggregator.retention import purge
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import DROP_COUNTS_SUFFIX, DropCount
from tests.aggregator.conftest import identity, lake_events, run_cli

SITE = "www.onecloud.example"
DAY = dt.date(2026, 11, 20)


def write_drops(sealed: Path, name: str, counts: list[DropCount]) -> Path:
    """A drop-count file as a collector worker seals it (collector/dropcounts.py)."""
    sealed.mkdir(parents=True, exist_ok=True)
    path = sealed / f"{name}{DROP_COUNTS_SUFFIX}"
    path.write_text("".join(json.dumps(c.to_record()) + "\n" for c in counts))
    return path


def worker_files(sealed: Path, workers: int = 6) -> Counter[tuple[str, str, str | None]]:
    """Each worker's counts over two days and two sites; returns the expected totals (site, reason, kind)."""
    expected: Counter[tuple[str, str, str | None]] = Counter()
    for w in range(workers):
        counts = [
            DropCount(SITE, DAY.isoformat(), "bot", "crawler", 10 + w),
            DropCount(SITE, DAY.isoformat(), "bot", "datacenter", 2),
            DropCount(SITE, (DAY + dt.timedelta(days=1)).isoformat(), "opt_out", None, 3),
            DropCount("docs.onecloud.example", DAY.isoformat(), "localhost", None, 1),
            DropCount(None, DAY.isoformat(), "unknown_site", None, 5),
        ]
        for c in counts:
            expected[c.site or "", c.reason, c.kind] += c.events
        write_drops(sealed, f"{w:020d}-host-{w}-000001", counts)
    return expected


def lake_drops(settings: Settings) -> Counter[tuple[str, str, str | None]]:
    out: Counter[tuple[str, str, str | None]] = Counter()
    start, end = DAY - dt.timedelta(days=5), DAY + dt.timedelta(days=5)
    for site in (SITE, "docs.onecloud.example", None):
        d = dropped(settings, site, start, end)
        for reason, n in d.reasons.items():
            if n and reason != "bot":
                out[site or "", reason, None] += n
        for kind, n in d.bot_kinds.items():
            if n:
                out[site or "", "bot", kind] += n
    return out


def test_counts_are_summed_once_and_a_second_run_changes_nothing(settings: Settings) -> None:
    expected = worker_files(settings.sealed_dir)
    report = Ingester(settings).run_once()
    assert report.dropped == sum(expected.values()) and report.quarantined == 0 and report.events == 0
    assert lake_drops(settings) == expected
    assert not list(settings.sealed_dir.glob("*" + DROP_COUNTS_SUFFIX))
    # One file per site and day, however many workers and batches wrote to it.
    files = sorted(p.relative_to(settings.lake_dir) for p in (settings.lake_dir / "drops").rglob("*.parquet"))
    assert [str(f) for f in files] == [
        "drops/site=_unknown/day=2026-11-20/drops.parquet",
        "drops/site=docs.onecloud.example/day=2026-11-20/drops.parquet",
        "drops/site=www.onecloud.example/day=2026-11-20/drops.parquet",
        "drops/site=www.onecloud.example/day=2026-11-21/drops.parquet",
    ]
    assert Ingester(settings).run_once().dropped == 0
    assert lake_drops(settings) == expected
    # Later counts for the same day add to the file in place.
    write_drops(
        settings.sealed_dir, "9" * 20 + "-host-9-000001", [DropCount(SITE, DAY.isoformat(), "bot", "crawler", 7)]
    )
    Ingester(settings).run_once()
    expected[SITE, "bot", "crawler"] += 7
    assert lake_drops(settings) == expected


@pytest.mark.parametrize("point", FAILPOINTS)
def test_kill_at_any_step_then_rerun_counts_every_drop_once(settings: Settings, point: str) -> None:
    events = generate(Traffic(DAY, 1, {SITE: 40}, seed=3))
    write_segments(events, settings.sealed_dir, per_segment=100)
    expected = worker_files(settings.sealed_dir)
    env = {"ANALYTICS_INGEST_BATCH_BYTES": "30000"}  # several batches, drops in more than one: the kill lands mid-run
    killed = run_cli(settings, "ingest", env={**env, "ANALYTICS_INGEST_FAILPOINT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = run_cli(settings, "ingest", env=env)
    assert done.returncode == 0, done.stderr
    assert lake_drops(settings) == expected
    assert lake_events(settings) == Counter(identity(e) for e in events)
    assert not list(settings.sealed_dir.iterdir())


def test_a_record_that_is_not_a_drop_count_is_quarantined_and_the_rest_counted(settings: Settings) -> None:
    good = DropCount(SITE, DAY.isoformat(), "bot", "client", 4).to_record()
    bad = [
        {**good, "reason": "because"},  # not a reason
        {**good, "kind": "crawler", "reason": "opt_out"},  # a kind on a drop that is no bot's
        {**good, "events": 0},
        {**good, "events": True},
        {**good, "day": "2026-13-01"},
        {**good, "ua": "Mozilla/5.0 secret"},  # a field that is not one of the five
        {"v": 2, **{k: v for k, v in good.items() if k != "v"}},
    ]
    path = settings.sealed_dir / f"{'0' * 20}-host-1-000001{DROP_COUNTS_SUFFIX}"
    settings.sealed_dir.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad]) + "{torn")
    report = Ingester(settings).run_once()
    assert report.dropped == 4 and report.quarantined == len(bad) + 1
    assert dropped(settings, SITE, DAY, DAY).bot_kinds["client"] == 4
    quarantined = (settings.lake_dir / "quarantine" / path.name).read_text()
    assert "secret" not in quarantined  # a foreign field's value is not kept (aggregator/records.py)


def test_drop_counts_are_purged_with_the_daily_aggregates(settings: Settings) -> None:
    write_drops(settings.sealed_dir, "0" * 20 + "-h-1-1", [DropCount(SITE, DAY.isoformat(), "bot", "crawler", 1)])
    old = (DAY - dt.timedelta(days=900)).isoformat()
    write_drops(settings.sealed_dir, "1" * 20 + "-h-1-1", [DropCount(SITE, old, "bot", "crawler", 1)])
    Ingester(settings).run_once()
    report = purge(settings, dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    assert report.drop_days == 1
    left = sorted(p.name for p in (settings.lake_dir / "drops" / f"site={SITE}").iterdir())
    assert left == [f"day={DAY.isoformat()}"]
