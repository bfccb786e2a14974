"""Expected Stats API answers computed in plain Python from the generated events.

Written from ARCHITECTURE.md's definitions, independently of the SQL: no DuckDB,
no import of the query builder. Only the final metric formulas' rounding is
restated here (round-half-even, as Python's ``round``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from collector.schema import MAX_ENGAGED_MS, Event

GAP = 30 * 60


@dataclass
class Visit:
    events: list[Event]
    day: dt.date
    key: int
    number: int

    @property
    def pageviews(self) -> list[Event]:
        return [e for e in self.events if e.name == "pageview"]

    @property
    def entry(self) -> Event:
        return (self.pageviews or self.events)[0]

    @property
    def exit(self) -> Event:
        return (self.pageviews or self.events)[-1]

    @property
    def bounce(self) -> bool:
        engaged = sum(min(e.engaged_ms or 0, MAX_ENGAGED_MS) for e in self.events if e.name == "engagement")
        return len(self.pageviews) == 1 and engaged < 10_000

    @property
    def duration(self) -> int:
        return self.events[-1].ts - self.events[0].ts


def utc_day(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def visits_of(events: list[Event]) -> list[tuple[Event, Visit]]:
    by_key: dict[tuple[dt.date, int], list[Event]] = defaultdict(list)
    for e in events:
        by_key[(utc_day(e.ts), e.day_key)].append(e)
    out: list[tuple[Event, Visit]] = []
    for (day, key), evs in by_key.items():
        evs.sort(key=lambda e: (e.ts, e.path))  # events of one second in path order (as the SQL breaks ties)
        runs: list[list[Event]] = [[evs[0]]]
        for prev, e in zip(evs, evs[1:], strict=False):
            if e.ts - prev.ts > GAP:
                runs.append([])
            runs[-1].append(e)
        for n, run in enumerate(runs):
            v = Visit(run, day, key, n)
            out.extend((e, v) for e in run)
    return out


def _n(value: object) -> str:
    return "(none)" if value is None else str(value)


def _hour(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:00:00")


DIMENSION_VALUE: dict[str, Callable[[Event, Visit], str]] = {
    "event:page": lambda e, v: e.path,
    "event:name": lambda e, v: e.name,
    "visit:entry_page": lambda e, v: v.entry.path,
    "visit:exit_page": lambda e, v: v.exit.path,
    "visit:source": lambda e, v: v.entry.referrer_source or "Direct / None",
    "visit:referrer": lambda e, v: (
        (v.entry.referrer_host + (v.entry.referrer_path or "")) if v.entry.referrer_host else "Direct / None"
    ),
    "visit:channel": lambda e, v: v.entry.channel,
    "visit:utm_source": lambda e, v: _n(v.entry.utm_source),
    "visit:utm_medium": lambda e, v: _n(v.entry.utm_medium),
    "visit:utm_campaign": lambda e, v: _n(v.entry.utm_campaign),
    "visit:utm_content": lambda e, v: _n(v.entry.utm_content),
    "visit:utm_term": lambda e, v: _n(v.entry.utm_term),
    "visit:browser": lambda e, v: e.browser,
    "visit:browser_version": lambda e, v: e.browser_version,
    "visit:os": lambda e, v: e.os,
    "visit:os_version": lambda e, v: e.os_version,
    "visit:device": lambda e, v: e.device,
    "visit:isp": lambda e, v: _n(e.isp),
    "visit:asn": lambda e, v: _n(e.asn),
    "visit:network_domain": lambda e, v: _n(e.network_domain),
    "time:day": lambda e, v: utc_day(e.ts).isoformat(),
    "time:hour": lambda e, v: _hour(e.ts),
    "time:week": lambda e, v: (utc_day(e.ts) - dt.timedelta(days=utc_day(e.ts).weekday())).isoformat(),
    "time:month": lambda e, v: utc_day(e.ts).replace(day=1).isoformat(),
}


def _value(dimension: str, e: Event, v: Visit, start: dt.date) -> str:
    value = DIMENSION_VALUE[dimension](e, v)
    if dimension == "time:week":  # the first week of a range starts with the range (as Plausible labels it)
        value = max(value, start.isoformat())
    return value


def _matches(op: str, value: str, values: tuple[str, ...]) -> bool:
    if op == "is":
        return value in values
    if op == "is_not":
        return value not in values
    return any(x in value for x in values)


def expected(
    events: list[Event],
    site: str,
    start: dt.date,
    end: dt.date,
    metrics: tuple[str, ...],
    dimensions: tuple[str, ...] = (),
    filters: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
) -> dict[tuple[str, ...], dict[str, float]]:
    """Unfolded rows: dimension values → metric values (k-anonymity is applied by the caller)."""
    scoped = [e for e in events if e.site == site and start <= utc_day(e.ts) <= end]
    groups: dict[tuple[str, ...], list[tuple[Event, Visit]]] = defaultdict(list)
    for e, v in visits_of(scoped):
        if all(_matches(op, DIMENSION_VALUE[d](e, v), vals) for op, d, vals in filters):
            groups[tuple(_value(d, e, v, start) for d in dimensions)].append((e, v))
    if not dimensions and not groups:
        groups[()] = []
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for key, rows in groups.items():
        counting = [(e, v) for e, v in rows if e.name != "engagement"]
        visitors = len({(v.day, v.key) for _, v in counting})
        visits = {id(v): v for _, v in counting}
        pageviews = sum(1 for e, _ in rows if e.name == "pageview")
        eng = [(e, v) for e, v in rows if e.name == "engagement" and e.engaged_ms is not None]
        engaged = sum(min(e.engaged_ms or 0, MAX_ENGAGED_MS) for e, _ in eng)
        reporters = len({(v.day, v.key) for _, v in eng})
        deepest: dict[tuple[dt.date, int, str], int] = {}
        for e, v in rows:
            if e.name == "engagement" and e.scroll_depth is not None:
                k = (v.day, v.key, e.path)
                deepest[k] = max(deepest.get(k, -1), e.scroll_depth)
        n = len(visits)
        values: dict[str, float] = {
            "visitors": visitors,
            "visits": n,
            "pageviews": pageviews,
            "events": len(counting),
            "views_per_visit": round(pageviews / n, 2) if n else 0.0,
            "bounce_rate": round(100 * sum(v.bounce for v in visits.values()) / n) if n else 0,
            "visit_duration": round(sum(v.duration for v in visits.values()) / n) if n else 0,
            "time_on_page": round(engaged / 1000 / reporters) if reporters else 0,
            "scroll_depth": round(sum(deepest.values()) / len(deepest)) if deepest else 0,
        }
        per_day: dict[dt.date, set[int]] = defaultdict(set)
        for _, v in counting:
            per_day[v.day].add(v.key)
        profiles = {profile(e) for e, _ in counting}
        out[key] = {m: values[m] for m in metrics} | {
            "_visitors": visitors,
            "_max_daily": max((len(keys) for keys in per_day.values()), default=0),
            "_profiles": len(profiles),
        }
    return out


def profile(e: Event) -> tuple[object, ...]:
    """A visitor's device and network (PRIVACY.md rule 5: what one person returning on other days keeps)."""
    return (e.browser, e.browser_version, e.os, e.os_version, e.device, e.asn, e.network_domain)


def people(row: dict[str, float]) -> int:
    """At least how many people a row describes: most visitors on one day, or distinct profiles."""
    return int(max(row["_max_daily"], row["_profiles"]))


def folded(
    events: list[Event],
    site: str,
    start: dt.date,
    end: dt.date,
    metrics: tuple[str, ...],
    dimension: str,
    k: int,
    filters: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
) -> tuple[dict[tuple[str, ...], dict[str, float]], dict[str, float] | None]:
    """Rows shown under K for one dimension, and the (other) row (None: not shown), by PRIVACY.md rule 5.

    Neighbouring filters are not applied here (tests of filtered answers check them on their own):
    a row is shown if it describes at least K people; (other) is the union of the rest counted again,
    and the smallest shown rows join it until it too describes at least K people.
    """
    rows = expected(events, site, start, end, metrics, (dimension,), filters)
    candidates = {key: row for key, row in rows.items() if row["_visitors"] > 0}
    shown = {key: row for key, row in candidates.items() if people(row) >= k}
    hidden = [key for key in candidates if key not in shown]
    other = None
    while hidden:
        union = expected(
            events, site, start, end, metrics, (), (*filters, ("is", dimension, tuple(h[0] for h in hidden)))
        )
        other = union[()]
        if people(other) >= k or not shown:
            break
        smallest = min(shown, key=lambda key: (shown[key]["_visitors"], key))
        del shown[smallest]
        hidden.append(smallest)
    if other is not None and people(other) < k:
        other = None
    return shown, other
