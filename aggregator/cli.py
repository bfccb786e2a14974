"""``python -m aggregator <command>``: ingest, rollup, compact, purge, query, funnel, nightly, settings."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aggregator.settings import Settings
from onecloud_kit import cli
from onecloud_kit.cli import Command

if TYPE_CHECKING:
    from aggregator.alerts import AlertChecker
    from aggregator.query import Querier


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.ingest import Ingester

    # A test hook (see aggregator/ingest.py), deliberately not a documented setting.
    ingester = Ingester(settings, failpoint=os.environ.get("ANALYTICS_INGEST_FAILPOINT") or None)
    alerts = _alert_checker(settings) if args.follow else None
    while True:
        report = ingester.run_once()
        if report.segments or report.recovered_batches or not args.follow:
            print(
                json.dumps(
                    {
                        "segments": report.segments,
                        "events": report.events,
                        "quarantined": report.quarantined,
                        "quarantine_reasons": dict(report.reasons),
                        "recovered_batches": report.recovered_batches,
                        "props_folded": report.props_folded,  # values past the day's cap, stored as (other)
                        "dropped": report.dropped,  # events the collectors filtered out (aggregator/drops.py)
                    }
                ),
                flush=True,
            )
        if not args.follow:
            return 0
        if report.segments:
            _maintain(settings)
        if alerts is not None:
            _check_alerts(alerts)
        time.sleep(settings.ingest_interval)


def _alert_checker(settings: Settings) -> AlertChecker:
    from aggregator.alerts import AlertChecker

    return AlertChecker(settings)


def _check_alerts(checker: AlertChecker) -> None:
    """The dashboards' alert rules (aggregator/alerts.py), at most once a minute; a failure never stops ingest."""
    try:
        sent = checker.maybe_check(_now())
    except Exception as exc:  # an SMTP outage or a broken rules file: say so, keep ingesting
        logging.getLogger("aggregator.alerts").error("alerts: check failed: %s: %s", type(exc).__name__, exc)
        return
    if sent:
        print(json.dumps({"alerts_sent": sent}), flush=True)


def _maintain(settings: Settings) -> None:
    """After a batch: keep today's file count bounded and the rollups (today's too) current."""
    from aggregator.compact import compact_locked
    from aggregator.lake import Lake
    from aggregator.rollupbuild import refresh_rollups_locked

    lake = Lake(settings.lake_dir)
    with lake.writer():
        now = _now()
        compact_locked(settings, lake, now)
        refresh_rollups_locked(settings, lake, now, today=True)


def _rollup(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.rollupbuild import refresh_rollups

    built = refresh_rollups(settings, now=_now(), force=args.force)
    print(json.dumps({"rollups_built": built}))
    return 0


def _compact(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.compact import compact_closed_days

    print(json.dumps({"days_compacted": compact_closed_days(settings, now=_now())}))
    return 0


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.retention import purge

    report = purge(settings, now=_now())
    print(json.dumps(report.as_dict()))
    return 0


def _query(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.stats_api import answer

    return _answer_json(args.json, settings, answer)


def _funnel(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.stats_api import funnel_answer

    return _answer_json(args.json, settings, funnel_answer)


def _answer_json(
    text: str, settings: Settings, handler: Callable[[Querier, Any, dt.datetime], tuple[int, dict[str, Any]]]
) -> int:
    """A Stats-API-shaped body from --json answered and printed; its errors on stderr, exit status 2."""
    from aggregator.query import Querier

    try:
        body = json.loads(text)
    except ValueError as exc:
        print(json.dumps({"error": f"--json is not JSON: {exc}"}), file=sys.stderr)
        return 2
    status, result = handler(Querier(settings), body, _now())
    if status != 200:
        print(json.dumps(result), file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _nightly(args: argparse.Namespace, settings: Settings) -> int:
    from aggregator.nightly import EXIT_USAGE, run_nightly

    day = None
    if args.day:
        try:
            day = dt.date.fromisoformat(args.day)
        except ValueError:
            print(f"aggregator nightly: --day {args.day!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
            return EXIT_USAGE
    return run_nightly(settings, day, _now(), mail=not args.no_mail)


def _ingest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow", action="store_true", help="keep ingesting every ANALYTICS_INGEST_INTERVAL seconds")


def _rollup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="rebuild every closed day")


def _query_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", required=True, help='the query, e.g. \'{"site_id": "...", "metrics": ["visitors"]}\'')


def _funnel_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", required=True, help='e.g. \'{"site_id": "...", "funnel": "Ordering", "date_range": "30d"}\''
    )


def _nightly_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--day", help="the UTC day to report on, YYYY-MM-DD (default: yesterday)")
    p.add_argument("--no-mail", action="store_true", help="write the reports but send no e-mail")


COMMANDS = (
    Command("ingest", "move sealed spool segments into the lake (exactly once)", _ingest, _ingest_arguments),
    Command("rollup", "(re)build daily aggregates of closed days that changed", _rollup, _rollup_arguments),
    Command("compact", "merge the small files of closed days", _compact),
    Command("purge", "delete raw events and aggregates past their retention", _purge),
    Command("query", "run a Stats API v2 query and print the JSON answer", _query, _query_arguments),
    Command("funnel", "a funnel of the site's goals, k-anonymous, as JSON", _funnel, _funnel_arguments),
    Command(
        "nightly",
        "ingest, compact, roll up, purge, then write (and e-mail) the reports of a day",
        _nightly,
        _nightly_arguments,
    ),
)


def main(argv: list[str] | None = None) -> int:
    return cli.main("aggregator", "OneCloud Analytics aggregator", Settings, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
