"""``aggregator nightly``: ingest, compaction, rollups, retention, reports, e-mail — in that order.

Each step runs even when an earlier one failed (a failed purge must not cost
the web team its morning report; reports read whatever the lake holds), and
the command exits non-zero naming every failed step. One line per step goes to
stdout with its counts and duration; on a terminal, stderr shows a progress
bar while the reports are written.

Running it twice for the same day writes the same bytes: reports contain no
time of generation, only the period they describe.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TextIO

from aggregator.lake import Lake
from aggregator.report import Period, Report
from aggregator.settings import Settings

EXIT_OK = 0
EXIT_STEP_FAILED = 1  # at least one step failed; the others ran
EXIT_USAGE = 2  # bad arguments or settings; nothing ran


def periods_for(day: dt.date) -> list[Period]:
    """The day's report, plus the week's on the run of a Monday and the month's on the run of the 1st.

    The run for ``day`` happens the next morning, so "Monday" means ``day`` is a
    Sunday (the ISO week just ended) and "the 1st" means ``day`` ends its month.
    """
    periods = [Period.day(day)]
    nxt = day + dt.timedelta(days=1)
    if nxt.weekday() == 0:
        periods.append(Period.iso_week(day))
    if nxt.day == 1:
        periods.append(Period.month(day))
    return periods


def lake_sites(settings: Settings) -> tuple[list[str], list[str]]:
    """(sites to report, partition directories skipped) from ``ANALYTICS_REPORT_SITES`` or the lake."""
    if settings.report_sites:
        return sorted(settings.report_sites), []
    lake = Lake(settings.lake_dir)
    names = {p.name.removeprefix("site=") for base in (lake.events_dir, lake.rollups_dir) for p in lake.site_dirs(base)}
    # A hashed directory name (x-…) does not tell its site: such a site must be listed in the setting.
    return sorted(n for n in names if not n.startswith("x-")), sorted(n for n in names if n.startswith("x-"))


class Progress:
    """A one-line progress bar on stderr, drawn only when it is a terminal."""

    def __init__(self, stream: TextIO, label: str, total: int, width: int = 24) -> None:
        self.stream, self.label, self.total, self.width = stream, label, max(total, 1), width
        self.enabled = stream.isatty()

    def update(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label:<8} [{bar}] {done}/{self.total} {note[:40]:<40}")
        self.stream.flush()

    def step(self, done: int, total: int) -> None:
        """Callback form for steps that learn their total as they go (batches, days)."""
        self.total = max(total, 1)
        self.update(done)

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (self.width + 70) + "\r")
            self.stream.flush()


@dataclass(slots=True)
class StepResult:
    name: str
    ok: bool
    summary: str
    seconds: float


@dataclass(slots=True)
class Nightly:
    settings: Settings
    day: dt.date
    now: dt.datetime
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    mail: bool = True
    results: list[StepResult] = field(default_factory=list)
    written: list[tuple[Report, list[Path]]] = field(default_factory=list)

    def run(self) -> int:
        self.out.write(f"nightly for {self.day.isoformat()} (data in {self.settings.data_dir})\n")
        self.out.flush()
        steps: list[tuple[str, Callable[[], str]]] = [
            ("ingest", self._ingest),
            ("compact", self._compact),
            ("rollup", self._rollup),
            ("purge", self._purge),
            ("reports", self._reports),
            ("mail", self._mail),
        ]
        for name, fn in steps:
            self._step(name, fn)
        failed = [r.name for r in self.results if not r.ok]
        if failed:
            self.err.write(f"nightly: FAILED step(s): {', '.join(failed)} (exit {EXIT_STEP_FAILED})\n")
            return EXIT_STEP_FAILED
        self.out.write(f"nightly: all {len(self.results)} steps ok\n")
        return EXIT_OK

    def _step(self, name: str, fn: Callable[[], str]) -> None:
        start = time.monotonic()
        try:
            summary, ok = fn(), True
        except Exception as exc:  # a failed step must not stop the next ones
            summary, ok = f"{type(exc).__name__}: {exc}", False
            self.err.write(f"nightly: step {name} failed: {summary}\n")
            self.err.flush()
        result = StepResult(name, ok, summary, time.monotonic() - start)
        self.results.append(result)
        status = "ok" if ok else "FAILED"
        self.out.write(f"{name:<8} {status:<6} {summary}  ({result.seconds:.2f} s)\n")
        self.out.flush()

    def _ingest(self) -> str:
        from aggregator.ingest import Ingester

        progress = Progress(self.err, "ingest", 1)
        try:
            r = Ingester(self.settings).run_once(progress=progress.step)
        finally:
            progress.close()
        return f"{r.segments} segments, {r.events:,} events, {r.quarantined} quarantined"

    def _compact(self) -> str:
        from aggregator.compact import compact_closed_days

        return f"{compact_closed_days(self.settings, self.now)} days compacted"

    def _rollup(self) -> str:
        from aggregator.rollupbuild import refresh_rollups

        progress = Progress(self.err, "rollup", 1)
        try:
            built = refresh_rollups(self.settings, self.now, progress=progress.step)
        finally:
            progress.close()
        return f"{built} daily rollups built"

    def _purge(self) -> str:
        from aggregator.retention import purge

        r = purge(self.settings, self.now)
        return (
            f"{r.raw_days} raw days (before {r.raw_cutoff}), {r.rollup_days} rollup days "
            f"(before {r.aggregate_cutoff}), {r.quarantine_files} quarantine files deleted"
        )

    def _reports(self) -> str:
        from aggregator.annotations import read as read_annotations
        from aggregator.jsonfile import SharedFileError
        from aggregator.query import Querier
        from aggregator.report import build_report
        from aggregator.report_files import write_report

        sites, skipped = lake_sites(self.settings)
        notes_problem = ""
        try:
            # Written by the dashboards (aggregator/annotations.py); a broken file must not cost the reports.
            notes = read_annotations(self.settings.data_dir)
        except SharedFileError as exc:
            notes, notes_problem = [], str(exc)
        jobs = [(site, p) for site in sites for p in periods_for(self.day)]
        progress = Progress(self.err, "reports", len(jobs))
        querier = Querier(self.settings)
        failures: list[str] = []
        try:
            for i, (site, period) in enumerate(jobs):
                progress.update(i, f"{site} {period.name}")
                try:
                    report = build_report(querier, site, period, self.now, annotations=notes)
                    _, files = write_report(self.settings.reports_dir, report, top=self.settings.report_top_rows)
                    self.written.append((report, files))
                except Exception as exc:  # one site's failure must not cost the others theirs
                    failures.append(f"{site} {period.name}: {type(exc).__name__}: {exc}")
            progress.update(len(jobs))
        finally:
            progress.close()
            querier.close()
        names = sorted({p.name for _, p in jobs})
        summary = f"{len(self.written)} reports for {len(sites)} sites ({', '.join(names) or 'none'})"
        summary += f" in {self.settings.reports_dir}"
        if notes_problem:
            summary += f"; annotations left out ({notes_problem})"
        if skipped:
            summary += f"; skipped {len(skipped)} hashed site directories (list them in ANALYTICS_REPORT_SITES)"
        if failures:
            more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
            raise RuntimeError(f"{len(failures)} of {len(jobs)} reports failed: " + "; ".join(failures[:3]) + more)
        return summary

    def _mail(self) -> str:
        from aggregator.mailer import build_message, send

        if not self.mail:
            return "skipped (--no-mail)"
        if not self.settings.smtp_host:
            return "skipped (ANALYTICS_SMTP_HOST is empty)"
        messages: list[EmailMessage] = [build_message(self.settings, r, files) for r, files in self.written]
        sent = send(self.settings, messages)
        return f"{sent} messages to {len(self.settings.report_to)} recipients via {self.settings.smtp_host}"


def run_nightly(
    settings: Settings,
    day: dt.date | None = None,
    now: dt.datetime | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    mail: bool = True,
) -> int:
    """Run every step; the clock is a parameter so tests can run "last night" at any time."""
    now = now or dt.datetime.now(dt.UTC)
    day = day or (now.astimezone(dt.UTC).date() - dt.timedelta(days=1))
    job = Nightly(settings, day, now, out or sys.stdout, err or sys.stderr, mail)
    return job.run()
