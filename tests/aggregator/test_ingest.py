from __future__ import annotations

import datetime as dt
import json
import signal
from collections import Counter

import pytest

from aggregator.ingest import FAILPOINTS, Ingester
from aggregator.lake import Lake, site_dir_name
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests.aggregator.conftest import identity, lake_events, run_cli
from tests.events import make_event

TRAFFIC = Traffic(dt.date(2026, 11, 20), 2, {"www.onecloud.example": 120, "docs.onecloud.example": 30}, seed=7)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return generate(TRAFFIC)


def test_ingest_moves_every_event_once(settings: Settings, events: list[Event]) -> None:
    segments = write_segments(events, settings.sealed_dir, per_segment=300)
    report = Ingester(settings).run_once()
    assert report.segments == len(segments) and report.events == len(events) and report.quarantined == 0
    assert lake_events(settings) == Counter(identity(e) for e in events)
    assert not list(settings.sealed_dir.glob("*.jsonl"))
    assert Lake(settings.lake_dir).manifest_path.read_bytes() == b""
    # A second run finds nothing to do and changes nothing.
    assert Ingester(settings).run_once().events == 0
    assert lake_events(settings) == Counter(identity(e) for e in events)


def test_partitions_by_site_and_utc_day(settings: Settings) -> None:
    midnight = int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp())
    evs = [
        make_event(ts=midnight + d, browser="Chrome", browser_version="131", os="Windows", os_version="10", day_key=1)
        for d in (-1, 0)
    ]
    write_segments(evs, settings.sealed_dir)
    Ingester(settings).run_once()
    lake = Lake(settings.lake_dir)
    assert lake.event_days("www.onecloud.example") == [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]


def test_site_directory_names_are_sanitised() -> None:
    assert site_dir_name("www.onecloud.example") == "www.onecloud.example"
    for bad in ("../etc", "a/b", "", "Upper.example", "a..b", "x" * 300):
        name = site_dir_name(bad)
        assert name.startswith("x-") and "/" not in name and ".." not in name


@pytest.mark.parametrize("point", FAILPOINTS)
def test_kill_at_any_step_then_rerun_loses_and_doubles_nothing(
    settings: Settings, events: list[Event], point: str
) -> None:
    write_segments(events, settings.sealed_dir, per_segment=200)
    env = {"ANALYTICS_INGEST_BATCH_BYTES": "150000"}  # several batches: the kill lands mid-run
    killed = run_cli(settings, "ingest", env={**env, "ANALYTICS_INGEST_FAILPOINT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = sum(lake_events(settings).values())
    assert partial <= len(events)
    done = run_cli(settings, "ingest", env=env)
    assert done.returncode == 0, done.stderr
    assert lake_events(settings) == Counter(identity(e) for e in events)
    assert not list(settings.sealed_dir.glob("*.jsonl"))
    assert not any((settings.lake_dir / "staging").iterdir())


def test_invalid_records_go_to_quarantine_and_the_rest_is_ingested(settings: Settings, events: list[Event]) -> None:
    good = [json.dumps(e.to_record()) for e in events[:50]]
    rec = events[0].to_record()
    bad = [
        json.dumps({**rec, "v": 99}),
        '{"v": 1, "site": "www.onecl',
        json.dumps({**rec, "ts": str(rec["ts"])}),
        json.dumps({**rec, "ip": "203.0.113.9"}),
        json.dumps({**rec, "browser": None}),
        json.dumps({**rec, "scroll_depth": 70000}),
        "\x00\x01 garbage",
    ]
    settings.sealed_dir.mkdir(parents=True)
    # One segment with broken lines (Python path), one whose lines all parse but break types (SQL path).
    (settings.sealed_dir / "0001-a.jsonl").write_text("\n".join(good[:25] + bad) + "\n")
    typed_bad = [json.dumps({**rec, "asn": "AS3320"}), json.dumps({**rec, "v": 3})]
    (settings.sealed_dir / "0002-b.jsonl").write_text("\n".join(good[25:] + typed_bad) + "\n")
    report = Ingester(settings).run_once()
    assert report.events == 50
    assert report.quarantined == len(bad) + len(typed_bad)
    assert sum(lake_events(settings).values()) == 50
    q = settings.lake_dir / "quarantine"
    entries = [json.loads(line) for f in sorted(q.iterdir()) for line in f.read_text().splitlines()]
    reasons = {e["reason"] for e in entries}
    assert "unsupported schema version 99" in reasons and "unsupported schema version 3" in reasons
    assert "field ts is not an integer" in reasons and "field asn is not an integer" in reasons
    assert "field browser may not be null" in reasons and "field scroll_depth is out of range" in reasons
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("fields not in the inventory" in r for r in reasons)
    # A foreign field's value is not kept, even in quarantine (PRIVACY.md: nothing outside the inventory).
    assert "203.0.113.9" not in "".join(f.read_text() for f in q.iterdir())


def test_bulk_check_accepts_nothing_event_from_record_rejects(settings: Settings, events: list[Event]) -> None:
    from collector.schema import INVENTORY, RecordError

    good = events[0].to_record()
    wrong: list[object] = ["7", 7, 7.5, True, None, [1], {"a": 1}, -1, 2**64, 10**30]
    bad_records = []
    for f in INVENTORY:
        for value in wrong:
            rec = {**good, f.name: value}
            try:
                Event.from_record(rec)
                from aggregator.records import lake_range_error

                if lake_range_error(Event.from_record(rec)) is None:
                    continue  # valid: not a case for this test
            except RecordError:
                pass
            bad_records.append(rec)
    settings.sealed_dir.mkdir(parents=True)
    for i, rec in enumerate(bad_records):
        # Each bad record alone among good ones: if the bulk check let it through, it would be ingested.
        lines = [json.dumps(e.to_record()) for e in events[i % 50 : i % 50 + 3]] + [json.dumps(rec)]
        (settings.sealed_dir / f"{i:05d}-x.jsonl").write_text("\n".join(lines) + "\n")
    report = Ingester(settings).run_once()
    assert report.quarantined == len(bad_records)
    assert report.events == 3 * len(bad_records)


def test_stored_schema_is_exactly_the_inventory(settings: Settings, events: list[Event]) -> None:
    """PRIVACY.md: a field not in the inventory is not stored (the day lives only in the directory name)."""
    import duckdb

    from collector.schema import INVENTORY

    write_segments(events[:200], settings.sealed_dir)
    Ingester(settings).run_once()
    files = sorted(settings.lake_dir.glob("events/*/*/*.parquet"))
    assert files
    for path in files:
        described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()
        stored = [(name, type_) for name, type_, *_ in described]
        assert stored == [(f.name, f.lake_type) for f in INVENTORY], path
