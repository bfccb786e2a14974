"""`aggregator nightly`: step order, idempotence, failures that leave later steps running, periods, progress."""

from __future__ import annotations

import datetime as dt
import io
import os
import pty
import re
import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.compact import compact_closed_days
from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.nightly import EXIT_STEP_FAILED, EXIT_USAGE, Progress, periods_for, run_nightly
from aggregator.report import Period
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from tests.aggregator.conftest import run_cli
from tests.aggregator.test_report import DAY, NOW, WWW, build_spool, report_tree

STEPS = ("ingest", "compact", "rollup", "purge", "reports", "mail")


def step_lines(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines() if line.split() and line.split()[0] in STEPS}


@pytest.mark.slow
def test_steps_run_in_order_and_a_second_run_writes_the_same_bytes(settings: Settings) -> None:
    build_spool(settings)
    out = io.StringIO()
    assert run_nightly(settings, DAY, NOW, out=out, err=out) == 0, out.getvalue()
    lines = step_lines(out.getvalue())
    assert tuple(lines) == STEPS
    assert all(" ok " in line for line in lines.values()), out.getvalue()
    assert "segments" in lines["ingest"] and "rollups built" in lines["rollup"] and "4 reports" in lines["reports"]
    assert not list(settings.sealed_dir.glob("*.jsonl"))  # ingested
    first = report_tree(settings.reports_dir)
    assert len(first) == 2 * 2 * 10  # 2 sites x (day + week) x (html, json, 7 breakdowns, series)

    out2 = io.StringIO()
    # Without --day, the day is yesterday (UTC) of the clock: the same day again.
    assert run_nightly(settings, None, NOW + dt.timedelta(hours=5), out=out2, err=out2) == 0
    assert out2.getvalue().startswith(f"nightly for {DAY.isoformat()} ")
    assert "0 segments" in step_lines(out2.getvalue())["ingest"]
    assert report_tree(settings.reports_dir) == first  # byte-identical, no generation time inside
    assert not [p for p in settings.reports_dir.rglob("*.tmp")]


def test_weekly_report_on_monday_monthly_on_the_first(settings: Settings) -> None:
    assert [p.name for p in periods_for(dt.date(2026, 11, 22))] == ["2026-11-22", "week-2026-W47"]  # run on Monday
    assert [p.name for p in periods_for(dt.date(2026, 11, 23))] == ["2026-11-23"]
    assert [p.name for p in periods_for(dt.date(2026, 11, 30))] == ["2026-11-30", "month-2026-11"]  # run on Dec 1
    assert [p.name for p in periods_for(dt.date(2026, 8, 31))] == ["2026-08-31", "month-2026-08"]
    assert [p.name for p in periods_for(dt.date(2027, 1, 31))] == ["2027-01-31", "week-2027-W04", "month-2027-01"]

    write_segments(generate(Traffic(dt.date(2026, 10, 29), 3, {WWW: 8}, seed=4)), settings.sealed_dir)
    out = io.StringIO()
    # The run of Sunday 1 November reports on Saturday 31 October, and on October.
    assert run_nightly(settings, dt.date(2026, 10, 31), dt.datetime(2026, 11, 1, 2, tzinfo=dt.UTC), out=out) == 0
    site = settings.reports_dir / WWW
    assert sorted(p.name for p in site.iterdir()) == ["2026-10-31", "month-2026-10"]
    daily = (site / "month-2026-10" / "daily.csv").read_text().splitlines()
    assert daily[0] == "day,visitors,pageviews" and len(daily) == 1 + 31
    assert Period.month(dt.date(2026, 10, 31)).title in (site / "month-2026-10" / "index.html").read_text()


def small_spool(settings: Settings) -> None:
    write_segments(generate(Traffic(DAY - dt.timedelta(days=2), 3, {WWW: 12}, seed=5)), settings.sealed_dir)


def test_cli_reports_dir_unwritable_fails_with_message_after_other_steps(settings: Settings) -> None:
    small_spool(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.reports_dir.write_text("a file where the reports directory belongs\n")  # root ignores modes
    proc = run_cli(settings, "nightly", "--day", DAY.isoformat())
    assert proc.returncode == EXIT_STEP_FAILED, proc.stdout + proc.stderr
    lines = step_lines(proc.stdout)
    assert tuple(lines) == STEPS
    for step in ("ingest", "compact", "rollup", "purge", "mail"):
        assert " ok " in lines[step], proc.stdout
    assert "FAILED" in lines["reports"]
    assert "nightly: step reports failed:" in proc.stderr
    assert "FAILED step(s): reports (exit 1)" in proc.stderr
    assert Lake(settings.lake_dir).event_days(WWW)  # ingest still did its work

    bad = run_cli(settings, "nightly", "--day", "yesterday")
    assert bad.returncode == EXIT_USAGE and "--day" in bad.stderr


@pytest.fixture
def readonly_mount() -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def test_purge_failure_still_writes_the_reports(settings: Settings, readonly_mount: list[Path]) -> None:
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a read-only tmpfs")
    old = DAY - dt.timedelta(days=120)  # past the 90-day raw retention at NOW
    small_spool(settings)
    write_segments(generate(Traffic(old, 1, {WWW: 3}, seed=6)), settings.sealed_dir, prefix="old")
    Ingester(settings).run_once()
    compact_closed_days(settings, NOW)
    # The old day's directory becomes a read-only file system: deleting it fails for real.
    day_dir = Lake(settings.lake_dir).day_dir(WWW, old)
    saved = settings.data_dir.parent / "saved-day"
    shutil.copytree(day_dir, saved)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(day_dir)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {mount.stderr!r}")
    readonly_mount.append(day_dir)
    for f in saved.iterdir():
        shutil.copy(f, day_dir / f.name)
    subprocess.run(["mount", "-o", "remount,ro", str(day_dir)], check=True)

    out, err = io.StringIO(), io.StringIO()
    rc = run_nightly(settings, DAY, NOW, out=out, err=err)

    assert rc == EXIT_STEP_FAILED
    lines = step_lines(out.getvalue())
    assert "FAILED" in lines["purge"] and "Read-only file system" in lines["purge"]
    assert " ok " in lines["reports"] and " ok " in lines["mail"]
    assert "step purge failed" in err.getvalue() and "FAILED step(s): purge" in err.getvalue()
    assert (settings.reports_dir / WWW / DAY.isoformat() / "index.html").is_file()


def test_progress_bar_only_on_a_terminal() -> None:
    master, slave = pty.openpty()
    with open(slave, "w", closefd=True) as tty:
        bar = Progress(tty, "reports", 4, width=8)
        bar.update(2, "www.onecloud.example 2026-11-22")
        bar.close()
        drawn = os.read(master, 4096).decode()
    os.close(master)
    assert "reports  [####----] 2/4 www.onecloud.example 2026-11-22" in drawn
    plain = io.StringIO()
    bar = Progress(plain, "reports", 4)
    bar.update(1)
    bar.close()
    assert plain.getvalue() == ""  # logs and cron mail get only the step lines


@pytest.mark.slow
def test_long_steps_draw_a_progress_bar_on_a_terminal(settings: Settings) -> None:
    build_spool(settings)
    master, slave = pty.openpty()
    out = io.StringIO()
    with open(slave, "w", closefd=True) as tty:
        assert run_nightly(settings, DAY, NOW, out=out, err=tty, mail=False) == 0, out.getvalue()
        drawn = b""
        while True:  # everything the steps wrote to the terminal
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                break
            drawn += os.read(master, 65536)
    os.close(master)
    text = drawn.decode()
    for label in ("ingest", "rollup", "reports"):
        assert re.search(rf"{label}\s+\[[#-]+\] \d+/\d+", text), (label, text[-500:])
    assert "[" not in out.getvalue()  # the step lines themselves stay plain
