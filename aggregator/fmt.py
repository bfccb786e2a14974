"""Number formatting for people: 12.3k, 1m 05s, 42%, +5%, −3 pp — the one set of rules of every surface.

The dashboards (cards, tables, charts, as Jinja filters) and the nightly report
(HTML, mail) show a figure and its change in the same words, so that the same
period reads the same everywhere. The report, printed and mailed, writes counts
in full (``exact``: 12,345); the dashboards abbreviate them (12.3k).
"""

from __future__ import annotations

import datetime as dt

from aggregator.metrics import Number

RATES = frozenset({"conversion_rate", "group_conversion_rate"})


def compact(n: Number) -> str:
    if isinstance(n, float) and not n.is_integer():
        return f"{n:.2f}".rstrip("0").rstrip(".")
    v = int(n)
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(v) >= limit:
            text = f"{v / limit:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return str(v)


def duration(seconds: Number) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def metric(name: str, value: Number | None, *, exact: bool = False) -> str:
    if value is None:
        return "–"
    if name == "bounce_rate":
        return f"{round(value)}%"
    if name in ("visit_duration", "time_on_page"):
        return duration(value)
    if name == "scroll_depth":
        return f"{round(value)}%"
    if name in RATES:
        # A conversion rate is often under 5 %: one decimal, as Plausible's dashboard shows it.
        return f"{round(float(value), 1):g}%"
    if exact and (isinstance(value, int) or value.is_integer()):
        return f"{int(value):,}"
    return compact(value)


def percent(value: Number | None) -> str:
    """A share as the query layer rounded it (a funnel's conversion rates)."""
    return "–" if value is None else f"{value:g}%"


def change(name: str, value: Number | None) -> str:
    if value is None:
        return "–"  # no comparison row (e.g. under K there); "no data to compare" is said by the caller
    if name in RATES:  # percentage points, to the decimal the query layer rounds them to
        value = round(float(value), 1)
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    if name in RATES:
        return f"{sign}{abs(value):g} pp"
    unit = " pp" if name == "bounce_rate" else "%"
    return f"{sign}{abs(round(value))}{unit}"


def timestamp(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
