"""CSV that is safe to open in a spreadsheet: the nightly reports' files and the dashboards' exports.

Values from visitors' browsers (paths, referrers, UTM values) could start with
``=``, ``+``, ``-``, ``@``, tab or carriage return and be run as a formula by a
spreadsheet (CSV injection); such cells get a leading single quote (OWASP).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)  # our own numbers: a negative change stays a number
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
