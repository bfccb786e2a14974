"""Annotations: site-wide notes on a date. Admins write them, everyone who may see the site sees them.

Kept in the dashboards' SQLite file; after every change all of them are also
written to ``<data_dir>/annotations.json`` (:func:`aggregator.annotations.write`,
atomically), which the nightly report reads: the aggregator never imports the
dashboards or opens their database. Notes are short free text (at most
``MAX_TEXT`` characters, control characters removed) and escaped wherever shown.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from aggregator import annotations as shared
from aggregator.annotations import Annotation
from dashboards.store import Store, now

MAX_TEXT = shared.MAX_TEXT
MAX_PER_SITE = shared.MAX_PER_SITE


class AnnotationError(ValueError):
    """A note cannot be added; the message says why."""


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    site: str
    day: dt.date
    text: str
    created_by: str
    created_at: int

    def shared(self) -> Annotation:
        return Annotation(self.site, self.day, self.text)


def clean(text: str) -> str:
    # One line of printable text: no control characters (they would garble a report or a CSV-minded reader).
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    return " ".join(kept.split())


class Annotations:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self._store = store
        self._data_dir = data_dir

    def add(self, site: str, day: dt.date, text: str, created_by: str) -> Note:
        text = clean(text)
        if not text:
            raise AnnotationError("A note needs some text.")
        if len(text) > MAX_TEXT:
            raise AnnotationError(f"A note is at most {MAX_TEXT} characters.")
        with self._store.connect() as con:
            (count,) = con.execute("SELECT count(*) FROM annotations WHERE site = ?", (site,)).fetchone()
            if count >= MAX_PER_SITE:
                raise AnnotationError(f"A site has at most {MAX_PER_SITE} notes: delete old ones first.")
            cur = con.execute(
                "INSERT INTO annotations (site, day, text, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
                (site, day.isoformat(), text, created_by, now()),
            )
            note_id = int(cur.lastrowid or 0)
        self.publish()
        return Note(note_id, site, day, text, created_by, now())

    def delete(self, site: str, note_id: int) -> Note | None:
        with self._store.connect() as con:
            row = con.execute("SELECT * FROM annotations WHERE id = ? AND site = ?", (note_id, site)).fetchone()
            if row is None:
                return None
            con.execute("DELETE FROM annotations WHERE id = ?", (note_id,))
        self.publish()
        return _note(row)

    def notes(self, site: str | None = None, start: dt.date | None = None, end: dt.date | None = None) -> list[Note]:
        sql = "SELECT * FROM annotations WHERE 1 = 1"
        params: list[str] = []
        if site is not None:
            sql += " AND site = ?"
            params.append(site)
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        if end is not None:
            sql += " AND day <= ?"
            params.append(end.isoformat())
        with self._store.connect() as con:
            return [_note(r) for r in con.execute(sql + " ORDER BY day DESC, id DESC", params)]

    def for_chart(self, site: str, start: dt.date, end: dt.date) -> list[Annotation]:
        return [n.shared() for n in reversed(self.notes(site, start, end))]

    def publish(self) -> None:
        """Write every note to the file the nightly report reads (atomically)."""
        shared.write(self._data_dir, [n.shared() for n in self.notes()])


def _note(r: sqlite3.Row) -> Note:
    return Note(r["id"], r["site"], dt.date.fromisoformat(r["day"]), r["text"], r["created_by"], r["created_at"])
