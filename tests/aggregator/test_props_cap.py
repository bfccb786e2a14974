"""Custom properties at ingest: at most N distinct values per key, site and day reach the lake, whatever comes.

A flood of distinct values (as an attacker, or a site sending an id as a
property, would cause) folds into ``(other)`` at ingest: within one batch,
across batches and ingest runs, across sites and days, and after ingest was
killed at every step and run again. Every event is still stored, once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest import FAILPOINTS, Ingester
from aggregator.settings import Settings
from aggregator.synth import write_segments
from collector.schema import OTHER_VALUE, Event
from tests.aggregator.conftest import identity, lake_events, run_cli
from tests.events import make_event

CAP = 10
SITE, SHOP = "www.onecloud.example", "shop.onecloud.example"
DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _flood(site: str, day: dt.datetime, n: int, key: str = "order", start: int = 0) -> list[Event]:
    """``n`` events each with a distinct value of ``key`` (and a steady key beside it), one second apart."""
    t0 = int(day.timestamp())
    return [
        make_event(
            site=site, ts=t0 + start + i, name="Signup", day_key=i + 1,
            props=tuple(sorted({key: f"v{start + i:05d}", "plan": "Pro" if i % 2 else "Free"}.items())),
        )
        for i in range(n)
    ]  # fmt: skip


def _values(settings: Settings) -> dict[tuple[str, str, str], set[str]]:
    """Distinct values per (site, day, key) in the lake."""
    files = sorted(str(p) for p in (settings.lake_dir / "events").rglob("*.parquet"))
    rows = (
        duckdb.connect()
        .execute(
            "SELECT site, CAST(CAST(ts AS DATE) AS VARCHAR), e.key, e.value "
            "FROM (SELECT site, ts, unnest(map_entries(props)) AS e FROM read_parquet(?))",
            [files],
        )
        .fetchall()
    )
    out: dict[tuple[str, str, str], set[str]] = {}
    for site, day, key, value in rows:
        out.setdefault((site, day, key), set()).add(value)
    return out


def _check(settings: Settings, expected: list[Event]) -> dict[tuple[str, str, str], set[str]]:
    assert lake_events(settings) == Counter(identity(e) for e in expected)  # all there, once
    values = _values(settings)
    for key, vs in values.items():
        assert len(vs) <= CAP, (key, len(vs))
    return values


@pytest.fixture
def capped(settings: Settings) -> Settings:
    return dataclasses.replace(settings, prop_values_per_day=CAP)


def test_a_flood_in_one_batch_keeps_the_first_values(capped: Settings) -> None:
    events = _flood(SITE, DAY, 500)
    write_segments(events, capped.sealed_dir, per_segment=100)
    report = Ingester(capped).run_once()
    values = _check(capped, events)
    day = DAY.date().isoformat()
    # The first N - 1 values (in the order they came), then "(other)": N in all.
    assert values[(SITE, day, "order")] == {f"v{i:05d}" for i in range(CAP - 1)} | {OTHER_VALUE}
    assert values[(SITE, day, "plan")] == {"Pro", "Free"}  # a key with few values is untouched
    assert report.props_folded == 500 - (CAP - 1)
    files = sorted(str(p) for p in (capped.lake_dir / "events").rglob("*.parquet"))
    (others,) = duckdb.connect().execute(
        "SELECT count(*) FROM read_parquet(?) WHERE props['order'] = ?", [files, OTHER_VALUE]
    ).fetchone() or (0,)
    assert others == 500 - (CAP - 1)  # folded events keep their other keys and every other field


def test_the_cap_holds_across_batches_runs_sites_and_days(capped: Settings) -> None:
    small = dataclasses.replace(capped, ingest_batch_bytes=20_000)  # several batches per run
    expected: list[Event] = []
    for run in range(3):
        events = [*_flood(SITE, DAY, 60, start=run * 60), *_flood(SHOP, DAY, 6, start=run * 6)]
        events += _flood(SITE, DAY + dt.timedelta(days=1), 7, start=run * 7)
        write_segments(events, small.sealed_dir, per_segment=20, prefix=f"run{run}")
        expected += events
        assert Ingester(small).run_once().batches > (1 if run == 0 else 0)
        _check(small, expected)
    values = _values(small)
    day, next_day = DAY.date().isoformat(), (DAY + dt.timedelta(days=1)).date().isoformat()
    assert len(values[(SITE, day, "order")]) == CAP and OTHER_VALUE in values[(SITE, day, "order")]
    # Each site and each day has its own allowance.
    assert len(values[(SHOP, day, "order")]) == CAP and OTHER_VALUE in values[(SHOP, day, "order")]
    assert len(values[(SITE, next_day, "order")]) == CAP


def test_one_ingester_that_keeps_running_sees_other_writers(capped: Settings) -> None:
    """``ingest --follow`` remembers values; files another process published are read, not assumed."""
    follow = Ingester(capped)
    first = _flood(SITE, DAY, 5)
    write_segments(first, capped.sealed_dir, prefix="a")
    follow.run_once()
    other = _flood(SITE, DAY, 5, start=5)
    write_segments(other, capped.sealed_dir, prefix="b")
    Ingester(capped).run_once()  # another writer (a one-off `aggregator ingest`)
    last = _flood(SITE, DAY, 5, start=10)
    write_segments(last, capped.sealed_dir, prefix="c")
    follow.run_once()
    values = _check(capped, first + other + last)
    assert values[(SITE, DAY.date().isoformat(), "order")] == {f"v{i:05d}" for i in range(CAP - 1)} | {OTHER_VALUE}


def test_a_value_sent_as_other_uses_no_room(capped: Settings) -> None:
    events = [
        make_event(site=SITE, ts=int(DAY.timestamp()) + i, name="Signup", props=(("order", OTHER_VALUE),))
        for i in range(3)
    ] + _flood(SITE, DAY, CAP - 1, start=10)
    write_segments(events, capped.sealed_dir)
    assert Ingester(capped).run_once().props_folded == 0
    assert len(_check(capped, events)[(SITE, DAY.date().isoformat(), "order")]) == CAP


@pytest.mark.parametrize("point", FAILPOINTS)
def test_killed_at_any_step_then_rerun_the_cap_still_holds(capped: Settings, point: str) -> None:
    events = _flood(SITE, DAY, 300) + _flood(SHOP, DAY + dt.timedelta(days=1), 40)
    write_segments(events, capped.sealed_dir, per_segment=30)
    env = {"ANALYTICS_INGEST_BATCH_BYTES": "40000", "ANALYTICS_PROP_VALUES_PER_DAY": str(CAP)}
    killed = run_cli(capped, "ingest", env={**env, "ANALYTICS_INGEST_FAILPOINT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = run_cli(capped, "ingest", env=env)
    assert done.returncode == 0, done.stderr
    values = _check(capped, events)
    assert len(values[(SITE, DAY.date().isoformat(), "order")]) == CAP
    assert not any((capped.lake_dir / "staging").iterdir())


def test_files_from_before_custom_properties_get_the_column(capped: Settings, tmp_path: Path) -> None:
    """An upgraded lake: old files lack the column; the first ingest adds it, so readers see one schema."""
    old_events = _flood(SITE, DAY, 3)
    write_segments(old_events, capped.sealed_dir)
    Ingester(capped).run_once()
    con = duckdb.connect()
    for path in (capped.lake_dir / "events").rglob("*.parquet"):  # as the previous version wrote them
        con.execute(f"COPY (SELECT * EXCLUDE (props) FROM read_parquet('{path}')) TO '{path}.old' (FORMAT parquet)")
        Path(f"{path}.old").replace(path)
    (capped.lake_dir / ".props-column").unlink()
    new = _flood(SITE, DAY, 3, start=3)
    write_segments(new, capped.sealed_dir, prefix="new")
    Ingester(capped).run_once()
    files = sorted(str(p) for p in (capped.lake_dir / "events").rglob("*.parquet"))
    assert len(files) == 2
    rows = con.execute("SELECT props['order'] FROM read_parquet(?) ORDER BY ts", [files]).fetchall()
    assert rows == [(None,)] * 3 + [(f"v{i:05d}",) for i in range(3, 6)]


@pytest.mark.parametrize(
    "props",
    [
        {"k": 1},
        {"k": None},
        {"k": ["a"]},
        {"k": {"a": "b"}},
        {"": "v"},
        {"k" * 65: "v"},
        {"k": "v" * 201},
        {f"k{i}": "v" for i in range(31)},
        "k=v",
        ["k", "v"],
        None,
    ],
)
def test_records_with_bad_props_are_quarantined_by_the_bulk_check_too(settings: Settings, props: object) -> None:
    import json

    good = [e.to_record() for e in _flood(SITE, DAY, 3)]
    settings.sealed_dir.mkdir(parents=True)
    lines = [json.dumps(r) for r in good] + [json.dumps({**good[0], "props": props})]
    (settings.sealed_dir / "0001-x.jsonl").write_text("\n".join(lines) + "\n")
    report = Ingester(settings).run_once()
    assert (report.events, report.quarantined) == (3, 1)


def test_records_of_the_previous_version_are_read_without_props(settings: Settings) -> None:
    import json

    events = _flood(SITE, DAY, 4)
    old = []
    for e in events:
        record = e.to_record()
        del record["props"]
        old.append(json.dumps({**record, "v": 1}))
    settings.sealed_dir.mkdir(parents=True)
    (settings.sealed_dir / "0001-old.jsonl").write_text("\n".join(old) + "\n")
    assert Ingester(settings).run_once().events == 4
    assert _values(settings) == {}
