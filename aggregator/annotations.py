"""Annotations: site-wide notes on a date, written by the dashboards' admins, read by the nightly report.

The dashboards keep them in their SQLite file and, after every change, write
all of them to ``<data_dir>/annotations.json`` with :func:`write` (atomically,
see :mod:`aggregator.jsonfile`); the report reads that file with :func:`read`.
So the aggregator needs nothing of the dashboards, and a report shows the notes
as they were when it ran. Format (``version`` 1)::

    {"version": 1, "sites": {"www.example": [{"date": "2026-11-20", "text": "Launch"}]}}

Notes are short text typed by admins (not visitor data); they are escaped
wherever they are shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aggregator.jsonfile import SharedFileError, read_json, write_json

FILE_NAME = "annotations.json"
VERSION = 1
MAX_TEXT = 200
MAX_PER_SITE = 2000


@dataclass(frozen=True, slots=True)
class Annotation:
    site: str
    day: dt.date
    text: str


def path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write(data_dir: Path, annotations: Iterable[Annotation]) -> None:
    sites: dict[str, list[dict[str, str]]] = {}
    for a in sorted(annotations, key=lambda a: (a.site, a.day, a.text)):
        sites.setdefault(a.site, []).append({"date": a.day.isoformat(), "text": a.text[:MAX_TEXT]})
    write_json(path(data_dir), {"version": VERSION, "sites": sites})


def read(data_dir: Path) -> list[Annotation]:
    """Every annotation in the file (none when there is no file); :class:`SharedFileError` if it is unusable."""
    data = read_json(path(data_dir))
    if data is None:
        return []
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("sites"), dict):
        raise SharedFileError(f"{FILE_NAME}: not a version {VERSION} annotations file")
    out: list[Annotation] = []
    for site, items in data["sites"].items():
        if not isinstance(items, list):
            raise SharedFileError(f"{FILE_NAME}: the notes of a site must be a list")
        for item in items[:MAX_PER_SITE]:
            try:
                day = dt.date.fromisoformat(item["date"])
                text = str(item["text"])[:MAX_TEXT]
            except (TypeError, KeyError, ValueError):
                raise SharedFileError(f"{FILE_NAME}: a note needs a date (YYYY-MM-DD) and a text") from None
            out.append(Annotation(str(site), day, text))
    return out


def for_period(annotations: Iterable[Annotation], site: str, start: dt.date, end: dt.date) -> list[Annotation]:
    return sorted((a for a in annotations if a.site == site and start <= a.day <= end), key=lambda a: a.day)
