"""Writing a report's files: ``summary.json``, one CSV per breakdown, ``index.html``.

Files are written to a temporary name in the target directory and renamed into
place, so a reader (or the e-mail step) never sees half a file. Nothing in
them depends on the time of generation: the same lake gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aggregator.csvsafe import to_csv
from aggregator.lake import fsync_dir, site_dir_name
from aggregator.metrics import GOAL_METRICS
from aggregator.report import COMPARISON_NOTE, SCHEMA_VERSION, VISITORS_NOTE, Report, other_note
from aggregator.report_goals import FunnelSummary, GoalSection
from aggregator.report_html import render_html

FUNNEL_COLUMNS = ("visitors", "dropoff", "conversion_rate", "conversion_rate_step", "median_seconds")


def _blank(value: object) -> object:
    return "" if value is None else value


def goals_csv(goals: GoalSection, keys: list[str]) -> str:
    """Every goal shown: its conversions, then per comparison the values before and the changes."""
    header = ["goal", *GOAL_METRICS]
    for key in keys:
        header += [f"{key}_{m}" for m in GOAL_METRICS] + [f"{key}_change_{m}" for m in GOAL_METRICS]
    rows = []
    for r in goals.rows:
        row: list[object] = [r.name, *map(_blank, r.values)]
        for key in keys:
            before, change = r.previous[key], r.change[key]
            row += [_blank(v) for v in before] if before is not None else [""] * len(GOAL_METRICS)
            row += [_blank(v) for v in change] if change is not None else [""] * len(GOAL_METRICS)
        rows.append(row)
    return to_csv(header, rows)


def funnels_csv(funnels: tuple[FunnelSummary, ...]) -> str:
    """One row per funnel step; a step not shown (under K) has ``shown`` false and no numbers."""
    rows = [
        [f.name, i, s.name, s.visitors is not None, *(_blank(getattr(s, c)) for c in FUNNEL_COLUMNS)]
        for f in funnels
        for i, s in enumerate(f.steps, 1)
    ]
    return to_csv(["funnel", "step", "goal", "shown", *FUNNEL_COLUMNS], rows)


def breakdown_csvs(report: Report) -> dict[str, str]:
    """File name → CSV text for every breakdown and the time series."""
    out: dict[str, str] = {}
    for b in report.breakdowns:
        header = [b.spec.column, *b.spec.metrics]
        out[f"{b.spec.key}.csv"] = to_csv(header, [[r.value, *r.metrics] for r in b.rows])
    if report.goals is not None:
        out["goals.csv"] = goals_csv(report.goals, [c.key for c in report.comparisons])
    if report.funnels:
        out["funnels.csv"] = funnels_csv(report.funnels)
    series_name = "hourly.csv" if report.period.kind == "day" else "daily.csv"
    out[series_name] = to_csv(
        ["hour (UTC)" if report.period.kind == "day" else "day", "visitors", "pageviews"],
        [[p.label, p.visitors, p.pageviews] for p in report.series],
    )
    return out


def summary(report: Report) -> dict[str, Any]:
    p = report.period
    return {
        "schema_version": SCHEMA_VERSION,
        "site": report.site,
        "period": {"kind": p.kind, "name": p.name, "start": p.start.isoformat(), "end": p.end.isoformat()},
        "comparisons": {
            c.key: {
                "label": c.label,
                "name": c.name,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "days": c.days,
                "visits": c.visits,
            }
            for c in report.comparisons
        },
        "k_anonymity": report.k,
        "notes": {"visitors": VISITORS_NOTE, "other": other_note(report.k), "comparisons": COMPARISON_NOTE},
        "kpis": {
            k.metric: {"label": k.label, "value": k.value, "previous": k.previous, "change": k.change}
            for k in report.kpis
        },
        "series": [{"label": s.label, "visitors": s.visitors, "pageviews": s.pageviews} for s in report.series],
        "annotations": [{"date": a.day.isoformat(), "text": a.text} for a in report.annotations],
        "breakdowns": {
            b.spec.key: {
                "dimension": b.spec.dimension,
                "metrics": list(b.spec.metrics),
                "folded_rows": b.folded_rows,
                "other_suppressed": b.other_suppressed,
                "rows": [{"value": r.value, **dict(zip(b.spec.metrics, r.metrics, strict=True))} for r in b.rows],
            }
            for b in report.breakdowns
        },
        "goals": None if report.goals is None else _goals_json(report.goals),
        "funnels": [
            {"name": f.name, "steps": [{"goal": s.name, **{c: getattr(s, c) for c in FUNNEL_COLUMNS}} for s in f.steps]}
            for f in report.funnels
        ],
        "notable_changes": [
            {
                "breakdown": m.breakdown,
                "value": m.value,
                "comparison": m.comparison,
                "visitors": m.visitors,
                "previous": m.previous,
            }
            for m in report.movers
        ],
        "warnings": list(report.warnings),
    }


def _goals_json(goals: GoalSection) -> dict[str, Any]:
    return {
        "metrics": list(GOAL_METRICS),
        "goals_configured": goals.goals,
        "folded_rows": goals.folded_rows,
        "other_suppressed": goals.other_suppressed,
        "rows": [
            {
                "goal": r.name,
                **dict(zip(GOAL_METRICS, r.values, strict=True)),
                "previous": {
                    k: None if v is None else dict(zip(GOAL_METRICS, v, strict=True)) for k, v in r.previous.items()
                },
                "change": {
                    k: None if v is None else dict(zip(GOAL_METRICS, v, strict=True)) for k, v in r.change.items()
                },
            }
            for r in goals.rows
        ],
    }


def summary_json(report: Report) -> str:
    return json.dumps(summary(report), indent=2, ensure_ascii=False) + "\n"


def report_dir(reports_dir: Path, report: Report) -> Path:
    # Sites are allowlisted hostnames, but a directory name is a path: same rule as the lake's partitions.
    return reports_dir / site_dir_name(report.site) / report.period.name


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(reports_dir: Path, report: Report, *, top: int = 10) -> tuple[Path, list[Path]]:
    """Write every file of ``report``; returns its directory and the files written."""
    directory = report_dir(reports_dir, report)
    directory.mkdir(parents=True, exist_ok=True)
    files = {"index.html": render_html(report, top=top), "summary.json": summary_json(report), **breakdown_csvs(report)}
    written = []
    for name, text in files.items():
        atomic_write(directory / name, text)
        written.append(directory / name)
    fsync_dir(directory)
    return directory, written
