"""Sealed spool segments → Parquet in the lake, each segment exactly once.

The protocol (a redo log; every step is idempotent):

1. **stage**: DuckDB parses a batch of segments and writes Parquet, partitioned by
   site and UTC day, under ``staging/<batch>/``; rejected records go to staged
   quarantine files. Everything staged is fsynced.
2. **commit**: one record naming the batch, its segments and its files is appended
   to the manifest and fsynced. Before this point a crash leaves only staging
   garbage (removed on the next run, the segments are ingested again); after it,
   the batch *will* be applied.
3. **publish**: staged files are renamed into ``events/site=/day=/``, ``drops/site=/day=/`` and ``quarantine/``.
4. **delete** the batch's segments, then its staging directory.

The collectors' drop counts (``*.drops`` files beside the segments, collector/dropcounts.py)
travel in the same batches: each batch's counts are summed with the lake's into one staged
file per site and day (aggregator/drops.py), so they too are applied exactly once.

Every run first recovers, holding the lake's writer lock: committed batches are
published and their segments deleted (a rename whose source is gone was already
done), uncommitted staging directories are removed. Then the manifest is empty
again. Kill the process anywhere and rerun: nothing is lost, nothing doubled.

``ANALYTICS_INGEST_FAILPOINT=<name>`` (tests only) makes the process kill itself
with SIGKILL at a named step: staged, committed, published-one, published,
deleted-one, done.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from aggregator import drops
from aggregator.db import connect
from aggregator.lake import Lake, fsync_dir, fsync_file, publish, site_dir_sql, sql_path
from aggregator.manifest import BatchRecord, Manifest
from aggregator.props import PropsCap, add_missing_column, props_column_done
from aggregator.records import (
    RECORD_KEYS,
    check_line,
    fast_ok_sql,
    json_columns_sql,
    quarantine_text,
    typed_select_sql,
)
from aggregator.settings import Settings
from collector.schema import DROP_COUNTS_SUFFIX

if TYPE_CHECKING:
    from aggregator.objectstore import ShippedSpool

log = logging.getLogger("aggregator.ingest")

FAILPOINTS = ("staged", "committed", "published-one", "published", "deleted-one", "done")


@dataclass(slots=True)
class IngestReport:
    batches: int = 0
    segments: int = 0
    events: int = 0
    quarantined: int = 0
    recovered_batches: int = 0
    props_folded: int = 0  # property values stored as "(other)": past the day's cap (aggregator/props.py)
    dropped: int = 0  # events the collectors dropped, as counted by the batches' drop-count files
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: IngestReport) -> None:
        self.batches += other.batches
        self.segments += other.segments
        self.events += other.events
        self.quarantined += other.quarantined
        self.props_folded += other.props_folded
        self.dropped += other.dropped
        self.recovered_batches += other.recovered_batches
        self.reasons.update(other.reasons)


class Ingester:
    def __init__(self, settings: Settings, failpoint: str | None = None) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_dir)
        self.failpoint = failpoint
        self.props = PropsCap(self.lake, settings.prop_values_per_day)
        self.shipped: ShippedSpool | None = None
        if settings.spool_url:
            from aggregator.objectstore import ShippedSpool

            self.shipped = ShippedSpool(settings.spool_url, settings.s3().filesystem(), self.lake.work_dir)

    def _reached(self, point: str) -> None:
        if self.failpoint == point:
            log.warning("failpoint %s: killing myself", point)
            os.kill(os.getpid(), signal.SIGKILL)

    def run_once(self, progress: Callable[[int, int], None] | None = None) -> IngestReport:
        """Ingest every sealed segment; ``progress(done, total)`` is called after each batch."""
        report = IngestReport()
        with self.lake.writer():
            manifest = Manifest.load(self.lake.manifest_path)
            report.recovered_batches = self._recover(manifest)
            if not props_column_done(self.lake):  # once per lake: files from before custom properties
                con = connect(self.settings)
                try:
                    add_missing_column(con, self.lake)
                finally:
                    con.close()
            if self.shipped is not None:
                # After recovery: a committed batch's shipped objects are deleted by then.
                self.shipped.fetch(self.settings.sealed_dir)
                self.shipped.prune_ledger(time.time())
            batches = self._batches()
            for done, batch in enumerate(batches, 1):
                report.add(self._ingest_batch(manifest, batch))
                if progress is not None:
                    progress(done, len(batches))
            manifest.truncate()
        return report

    # --- recovery ----------------------------------------------------------------

    def _recover(self, manifest: Manifest) -> int:
        for record in manifest.batches.values():
            self._apply(record)
        if self.lake.staging_dir.is_dir():
            for leftover in self.lake.staging_dir.iterdir():
                # Not committed (committed ones were just applied and removed), or
                # the temporary file of an interrupted rollup or compaction.
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
        recovered = len(manifest.batches)
        manifest.truncate()
        return recovered

    def _apply(self, record: BatchRecord) -> None:
        staging = self.lake.staging_dir / record.batch
        for i, (src, dst) in enumerate(record.files):
            if (staging / src).exists():
                publish(staging / src, self.lake.root / dst)
            if i == 0:
                self._reached("published-one")
        self._reached("published")
        sealed = self.settings.sealed_dir
        for i, name in enumerate(record.segments):
            try:
                (sealed / name).unlink()
            except FileNotFoundError:
                pass
            if i == 0:
                self._reached("deleted-one")
        if sealed.is_dir():
            fsync_dir(sealed)
        if self.shipped is not None:
            self.shipped.consumed(list(record.segments), time.time())
        shutil.rmtree(staging, ignore_errors=True)
        self._reached("done")

    # --- batching ----------------------------------------------------------------

    def _batches(self) -> list[list[Path]]:
        sealed = self.settings.sealed_dir
        if not sealed.is_dir():
            return []
        batches: list[list[Path]] = []
        current: list[Path] = []
        size = 0
        found = [*sealed.glob("*.jsonl"), *sealed.glob("*" + DROP_COUNTS_SUFFIX)]
        for path in sorted(found, key=lambda p: p.name):
            try:
                n = path.stat().st_size
            except FileNotFoundError:
                continue
            if current and size + n > self.settings.ingest_batch_bytes:
                batches.append(current)
                current, size = [], 0
            current.append(path)
            size += n
        if current:
            batches.append(current)
        return batches

    # --- one batch ---------------------------------------------------------------

    def _ingest_batch(self, manifest: Manifest, segments: list[Path]) -> IngestReport:
        report = IngestReport(batches=1, segments=len(segments))
        batch = uuid.uuid4().hex
        staging = self.lake.staging_dir / batch
        (staging / "quarantine").mkdir(parents=True)
        quarantine: dict[str, list[str]] = {}
        counted = [s for s in segments if s.name.endswith(DROP_COUNTS_SUFFIX)]
        event_segments = [s for s in segments if not s.name.endswith(DROP_COUNTS_SUFFIX)]
        con = connect(self.settings)
        try:
            suspicious = self._suspicious(con, event_segments) if event_segments else set()
            inputs: list[tuple[Path, str]] = []  # (file DuckDB reads, segment name)
            for seg in event_segments:
                if seg in suspicious:
                    clean = self._python_path(seg, staging, quarantine, report, seg.name)
                    if clean is not None:
                        inputs.append((clean, seg.name))
                else:
                    inputs.append((seg, seg.name))
            for round_ in (1, 2):
                if not inputs:
                    break
                # Segments whose rows fail the bulk check take the exact Python path (reasons, line
                # numbers), and their clean remainder comes back for a second, final round.
                count, failed = self._stage_events(con, inputs, staging, f"{batch}_{round_}")
                report.events += count
                retry = []
                for path, name in failed:
                    if round_ == 2:
                        raise RuntimeError(f"records of {name} pass Event.from_record but not the bulk check")
                    clean = self._python_path(path, staging, quarantine, report, name)
                    if clean is not None:
                        retry.append((clean, name))
                inputs = retry
            # Before anything is fsynced or committed: what is committed already keeps the cap.
            report.props_folded = self.props.apply(con, staging / "events")

            def reject(name: str, line_no: int, reason: str, line: bytes) -> None:
                self._quarantine(quarantine, name, line_no, reason, quarantine_text(line), report)

            staged_drops = drops.stage(con, self.lake, drops.read_counts(counted, reject), staging)
        finally:
            con.close()
        report.dropped = staged_drops.events
        files: list[tuple[str, str]] = []
        for rel in staged_drops.files:
            fsync_file(staging / rel)
            files.append((rel, rel))
        out = staging / "events"
        for path in sorted(out.rglob("*.parquet")) if out.is_dir() else []:
            site_part, day_part = path.parent.parent.name, path.parent.name
            dst = f"events/site={site_part.split('=', 1)[1]}/day={day_part.split('=', 1)[1]}/{path.name}"
            files.append((str(path.relative_to(staging)), dst))
            fsync_file(path)
        for seg_name, entries in quarantine.items():
            qpath = staging / "quarantine" / seg_name
            qpath.write_text("".join(e + "\n" for e in entries))
            fsync_file(qpath)
            files.append((f"quarantine/{seg_name}", f"quarantine/{seg_name}"))
        self._reached("staged")
        record = BatchRecord(batch, tuple(s.name for s in segments), tuple(files), report.events, report.quarantined)
        manifest.commit(record)
        self._reached("committed")
        self._apply(record)
        self.props.published([dst for _, dst in files])
        if report.quarantined:
            log.warning("quarantined %d records: %s", report.quarantined, dict(report.reasons))
        return report

    def _suspicious(self, con: duckdb.DuckDBPyConnection, segments: list[Path]) -> set[Path]:
        """Segments with a line DuckDB cannot parse or whose keys are not exactly the inventory's."""
        sql = (
            "SELECT filename FROM read_csv(?, columns={'line': 'VARCHAR'}, delim='\\x01', quote='', escape='', "
            "header=false, auto_detect=false, filename=true, strict_mode=false, null_padding=true) "
            "WHERE coalesce(len(try(json_keys(line))), -1) <> ? GROUP BY filename"
        )
        try:
            rows = con.execute(sql, [[str(s) for s in segments], RECORD_KEYS]).fetchall()
            return {Path(r[0]) for r in rows}
        except duckdb.Error:
            bad: set[Path] = set()
            for seg in segments:  # find the culprit(s); the rest keep the fast path
                try:
                    if con.execute(sql, [[str(seg)], RECORD_KEYS]).fetchall():
                        bad.add(seg)
                except duckdb.Error:
                    bad.add(seg)
            return bad

    def _python_path(
        self, seg: Path, staging: Path, quarantine: dict[str, list[str]], report: IngestReport, name: str
    ) -> Path | None:
        import json

        clean_lines: list[str] = []
        for n, line in enumerate(seg.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            event, reason = check_line(line)
            if event is None:
                assert reason is not None
                self._quarantine(quarantine, name, n, reason, quarantine_text(line), report)
            else:
                clean_lines.append(json.dumps(event.to_record(), separators=(",", ":")))
        if not clean_lines:
            return None
        clean = staging / f"clean-{name}"
        clean.write_text("\n".join(clean_lines) + "\n")
        return clean

    @staticmethod
    def _quarantine(
        quarantine: dict[str, list[str]],
        segment: str,
        line_no: int | None,
        reason: str,
        text: str,
        report: IngestReport,
    ) -> None:
        import json

        entry = {"segment": segment, "line": line_no, "reason": reason, "record": text}
        quarantine.setdefault(segment, []).append(json.dumps(entry, ensure_ascii=False))
        report.quarantined += 1
        report.reasons[reason] += 1

    def _stage_events(
        self, con: duckdb.DuckDBPyConnection, inputs: list[tuple[Path, str]], staging: Path, pattern: str
    ) -> tuple[int, list[tuple[Path, str]]]:
        """Stage the rows of ``inputs`` whose segment passes the bulk check; return the segments that do not.

        The usual case is one streaming statement, JSON → typed → partitioned Parquet, with
        the check's outcome as the first partition key. Only if some row failed (an
        ``ok=false`` partition exists) is the batch redone through a temp table to find
        the segments to send down the Python path.
        """
        out = staging / "events" / pattern  # one directory per round: COPY wants an empty one
        out.parent.mkdir(exist_ok=True)
        files = [str(p) for p, _ in inputs]
        source = f"read_json(?, format='newline_delimited', columns={json_columns_sql()}, filename=true)"
        # Partition columns are not written into the files; `site` stays in them.
        row = con.execute(
            f"COPY (SELECT *, {site_dir_sql('site')} AS s, CAST(ts AS DATE) AS d FROM ("
            f"SELECT {typed_select_sql()}, coalesce({fast_ok_sql()}, false) AS ok FROM {source})) "
            f"TO {sql_path(out)} (FORMAT parquet, PARTITION_BY (ok, s, d), FILENAME_PATTERN '{pattern}_{{i}}')",
            [files],
        ).fetchone()
        if not (out / "ok=false").exists():
            return (int(row[0]) if row else 0), []
        shutil.rmtree(out)
        con.execute(
            f"CREATE TEMP TABLE good AS SELECT {typed_select_sql()}, {fast_ok_sql()} AS ok, filename FROM {source}",
            [files],
        )
        failed_names = {r[0] for r in con.execute("SELECT DISTINCT filename FROM good WHERE ok IS NOT true").fetchall()}
        failed = [(p, name) for p, name in inputs if str(p) in failed_names]
        keep = "NOT list_contains(?, filename)"
        (count,) = con.execute(f"SELECT count(*) FROM good WHERE {keep}", [sorted(failed_names)]).fetchone() or (0,)
        if count:
            con.execute(
                f"COPY (SELECT * EXCLUDE (ok, filename), {site_dir_sql('site')} AS s, CAST(ts AS DATE) AS d "
                f"FROM good WHERE {keep}) TO {sql_path(out)} "
                f"(FORMAT parquet, PARTITION_BY (s, d), FILENAME_PATTERN '{pattern}_{{i}}')",
                [sorted(failed_names)],
            )
        con.execute("DROP TABLE good")
        return int(count), failed
