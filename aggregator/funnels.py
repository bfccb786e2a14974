"""Funnels: visitors passing 2-8 goals in order within a visit, and where they drop out.

A visit *enters* a funnel at its first event converting step 1, and reaches
step k at its first event converting step k at or after the moment it reached
step k-1 (other events in between are allowed; a step repeated counts once).
Visits never span UTC midnight (the day key changes), so neither do funnels.
Only events matching the filters count, as everywhere (a segment's funnel).

Each step is a row of an answer (PRIVACY.md rule 5): shown only if the
visitors reaching it describe at least K people, and only if those who drop
out between it and the step before are none or at least K people too (else
``step k`` minus ``step k-1`` would name a small group); once a step is not
shown, the steps after it are not either. Against each neighbouring filter set
(one condition or value less), a step's visitors differ by none or by at least
K visitors on some day, or the step is not shown.

Steps are found in the hits table (aggregator/tables.py), which carries each
event's visit and visit columns, and keeps the time of every event it merges;
unfiltered, in the conversions table built from it for the site's goals
(aggregator/conversions.py), one row per visit part and goal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from aggregator.filters import Expr, GoalLike, neighbours
from aggregator.goalscope import conversion_steps, converting_codes
from aggregator.kanon import people_ok
from aggregator.page import Page
from aggregator.periods import DateRange, PeriodError, resolve
from aggregator.request import QueryError
from aggregator.scope import Scope

MIN_STEPS, MAX_STEPS = 2, 8


@dataclass(frozen=True, slots=True)
class FunnelStep:
    name: str
    visitors: int | None  # None: not shown (under K, or after a step that is not)
    dropoff: int | None  # visitors of the step before who did not reach this one
    conversion_rate: float | None  # of the visitors entering (step 1), percent
    conversion_rate_step: float | None  # of the step before, percent
    median_seconds: int | None  # from the step before, over the visits reaching this one


@dataclass(slots=True)
class FunnelResult:
    site_id: str
    start: dt.date
    end: dt.date
    steps: list[FunnelStep]
    k_anonymity: int
    warnings: list[str] = field(default_factory=list)


def _step_hits(scope: Scope, goals: list[GoalLike], params: dict[str, Any]) -> str:
    """SQL of the step hits: (day, day_key, vno, profile, key_rows, step, first_ts, last_ts, ts_more) of the hits
    matching the filters that convert a step (a hit converting two steps is two rows).

    The hits already carry their visit (``vno``) and every visit column the filters read, so no event is matched
    to its visit here; their first and last second and ``ts_more`` (aggregator/tables.py) keep every event's time.
    """
    codes, dayless = converting_codes(scope, goals, "step", [str(i + 1) for i in range(len(goals))], {})
    where = scope.condition(params)
    props = []
    for i, g in enumerate(goals):
        for j, (k, v) in enumerate(sorted(g.props.items()) if g.kind != "page" else ()):
            params[f"pk{i}_{j}"], params[f"pv{i}_{j}"] = k, v
            props.append(f"(s.step <> {i + 1} OR h.props[CAST($pk{i}_{j} AS VARCHAR)] = CAST($pv{i}_{j} AS VARCHAR))")
    checked = " AND ".join(props) or "true"
    return f"""(
  SELECT h.day, h.day_key, h.vno, h.profile, h.key_rows, s.step, h.first_ts, h.last_ts, h.ts_more
  FROM (SELECT day, day_key, vno, profile, key_rows, kind, c_page, c_name, props, first_ts, last_ts, ts_more
        FROM {scope.coded().hits} WHERE kind <> 1 AND {where}) h
  JOIN {codes} s ON {"" if dayless else "h.day = s.day AND "}s.page = (h.kind = 0)
    AND s.code = CASE WHEN h.kind = 0 THEN h.c_page ELSE h.c_name END
  WHERE {checked}
)"""


def _first_at_or_after(t: str) -> str:
    """The second of a step hit's first event at or after ``t`` (given its last one is): its first second, or
    its last when it has two events, or the least of its seconds from ``t`` on."""
    return (f"CASE WHEN se.first_ts >= {t} THEN se.first_ts WHEN se.ts_more IS NULL THEN se.last_ts "
            f"ELSE list_min(list_filter(se.ts_more, lambda x: x >= {t})) END")  # fmt: skip


def funnel_sql(scope: Scope, goals: list[GoalLike], params: dict[str, Any]) -> str:
    """Per visit entering the funnel: its day, day key, profile, whether its day key has no other visit row
    (``single``), and the second it reached each step (NULL: not
    reached).

    Step k is looked for only in the visits that reached step k-1 (an inner join with them, so each step's join
    is no larger than the visits still in the funnel); the steps are then put side by side per visit. Read from
    the conversions rows, visits are joined on their ``vkey`` (one BIGINT), else on (day, day key, number).
    """
    fast = conversion_steps(scope, goals, params)
    key: tuple[str, ...]
    carried: tuple[str, ...]
    if fast is not None:  # unfiltered: the conversions rows, one per visit part and step, keyed by ``vkey``
        ctes, rels = fast
        key, carried = ("vkey",), ("day", "day_key", "vno")
    else:
        ctes = [f"se AS MATERIALIZED (SELECT * FROM {_step_hits(scope, goals, params)})"]
        rels = [
            f"(SELECT *, NULL::BIGINT AS visit_rows, false AS merged FROM se WHERE step = {k})"
            for k in range(1, len(goals) + 1)
        ]
        key, carried = ("day", "day_key", "vno"), ()
    keys = ", ".join(key)
    plain = "".join(f", {c}" for c in carried)
    anys = "".join(f", any_value({c}) AS {c}" for c in carried)
    # A conversions row of a visit with one part is that visit's only row of the step: no grouping.
    ctes.append(
        f"r1 AS MATERIALIZED (SELECT {keys}{plain}, profile, key_rows = 1 AS single, first_ts AS t1 FROM {rels[0]} "
        "WHERE merged AND visit_rows = 1 UNION ALL "
        f"SELECT {keys}{anys}, any_value(profile) AS profile, bool_and(key_rows = 1) AS single, min(first_ts) AS t1 "
        f"FROM {rels[0]} WHERE NOT merged OR visit_rows > 1 GROUP BY {keys})"
    )
    r_keys = ", ".join(f"r.{c}" for c in key)
    on = " AND ".join(f"se.{c} = r.{c}" for c in key)
    for k in range(2, len(goals) + 1):
        ctes.append(
            f"r{k} AS MATERIALIZED (SELECT {r_keys}, min({_first_at_or_after(f'r.t{k - 1}')}) AS t{k} "
            f"FROM r{k - 1} r JOIN {rels[k - 1]} se ON {on} AND se.last_ts >= r.t{k - 1} GROUP BY {r_keys})"
        )
    steps = ", ".join(f"r{k}.t{k}" for k in range(2, len(goals) + 1))
    joins = "".join(f" LEFT JOIN r{k} USING ({keys})" for k in range(2, len(goals) + 1))
    return (
        "WITH " + ",\n".join(ctes) + f"\nSELECT r1.day, r1.day_key, r1.vno, r1.profile, r1.single, r1.t1, {steps} "
        f"FROM r1{joins}"
    )


def per_step(scope: Scope, goals: list[GoalLike]) -> list[dict[str, Any]]:
    """Per step: visitors, most on one day, distinct profiles; drop-off's most on one day and profiles; median."""
    if not scope.raw_days:
        return [dict(visitors=0, daily={}, profiles=0, drop_daily=0, drop_profiles=0, median=None) for _ in goals]
    params: dict[str, Any] = {}
    table = scope.page.name("funnel")
    cur = scope.page.cur
    cur.execute(f"CREATE TEMP TABLE {table} AS {funnel_sql(scope, goals, params)}", params)
    n = len(goals)
    # A visit reaches steps 1..level (each step needs the one before); a visitor (a day key on its day) reaches
    # the highest level of its visits. Four statements answer every step, not four per step.
    level = " + ".join(f"CAST(t{k} IS NOT NULL AS INTEGER)" for k in range(1, n + 1))
    # Per visit, its visitor's level; ``one`` marks one visit per visitor. A visit whose day key has one visit
    # row (``single``, most of them) is its visitor: only the other day keys are grouped (a window, not a
    # grouping of every visitor with a list of their profiles).
    cur.execute(f"""CREATE TEMP TABLE {table}_v AS
SELECT day, {level} AS lvl, profile, true AS one FROM {table} WHERE single
UNION ALL
SELECT day, max({level}) OVER w AS lvl, profile, row_number() OVER w = 1 AS one FROM {table} WHERE NOT single
WINDOW w AS (PARTITION BY day, day_key)""")
    per_day: dict[int, dict[Any, int]] = {k: {} for k in range(n + 1)}  # visitors whose level is exactly k
    by_level = f"SELECT day, lvl, count(*) FILTER (WHERE one) FROM {table}_v GROUP BY day, lvl"
    for day, lvl, count in cur.execute(by_level).fetchall():
        per_day[int(lvl)][day] = int(count)
    # Profiles of the visits reaching step k: a profile counts from its highest visit level down.
    top = dict(cur.execute(f"SELECT ml, count(*) FROM (SELECT profile, max({level}) AS ml FROM {table} "
                           "GROUP BY profile) GROUP BY ml").fetchall())  # fmt: skip
    drop_profiles = dict(cur.execute(f"SELECT lvl, count(DISTINCT profile) FROM {table}_v GROUP BY lvl").fetchall())
    medians = ", ".join(f"median(epoch(t{k}) - epoch(t{k - 1}))" for k in range(2, n + 1))
    mrow = cur.execute(f"SELECT {medians} FROM {table}").fetchone() or (None,) * (n - 1)
    out = []
    for k in range(1, n + 1):
        daily: dict[Any, int] = {}
        for lvl in range(k, n + 1):
            for day, count in per_day[lvl].items():
                daily[day] = daily.get(day, 0) + count
        profiles = sum(int(c) for ml, c in top.items() if int(ml) >= k)
        step: dict[str, Any] = {"visitors": sum(daily.values()), "daily": daily, "profiles": profiles}
        if k > 1:
            # Visitors at step k-1 who never reach step k that day: those whose level is k-1.
            step["drop_daily"] = max(per_day[k - 1].values(), default=0)
            step["drop_profiles"] = int(drop_profiles.get(k - 1, 0))
            m = mrow[k - 2]
            step["median"] = int(m) if m is not None else None
        out.append(step)
    return out


def _people(k: int, visitors: int, max_daily: int, profiles: int) -> bool:
    return people_ok(k, visitors, max_daily, lambda: profiles)


def decide(
    names: list[str],
    steps: list[dict[str, Any]],
    neighbours: list[list[dict[str, Any]]],
    k: int,
) -> list[FunnelStep]:
    """The shown steps (see the module docstring)."""
    out: list[FunnelStep] = []
    shown = True
    first: int | None = None
    previous: int | None = None
    for i, (name, s) in enumerate(zip(names, steps, strict=True)):
        visitors = int(s["visitors"])
        max_daily = max(s["daily"].values(), default=0)
        if shown and visitors and not _people(k, visitors, max_daily, int(s["profiles"])):
            shown = False
        if shown and i > 0 and previous is not None:
            dropped = previous - visitors
            if dropped and not _people(k, dropped, int(s["drop_daily"]), int(s["drop_profiles"])):
                shown = False
        for other in neighbours:
            if not shown:
                break
            days = set(s["daily"]) | set(other[i]["daily"])
            diffs = [abs(s["daily"].get(d, 0) - other[i]["daily"].get(d, 0)) for d in days]
            if sum(diffs) and max(diffs, default=0) < k:
                shown = False
        if not shown:
            out.append(FunnelStep(name, None, None, None, None, None))
            continue
        if first is None:
            first = visitors
        out.append(
            FunnelStep(
                name,
                visitors,
                (previous - visitors) if i > 0 and previous is not None else None,
                round(100 * visitors / first, 2) if first else 0.0,
                round(100 * visitors / previous, 2) if i > 0 and previous else (100.0 if i == 0 else 0.0),
                s.get("median") if i > 0 else None,
            )
        )
        previous = visitors
    return out


def answer(
    page: Page,
    site: str,
    date_range: DateRange,
    steps: list[GoalLike],
    filters: tuple[Expr, ...],
    today: dt.date,
    k: int,
) -> FunnelResult:
    """A funnel of ``steps`` over the range, under the filters, each step shown or not by the rules above."""
    bounds = page.bounds(site)
    try:
        start, end = resolve(date_range, today, bounds[0] if bounds else None)
    except PeriodError as exc:
        raise QueryError(str(exc)) from None
    scope = page.scope(site, start, end, filters)
    counts = per_step(scope, steps)
    others = [per_step(page.scope(site, start, end, g), steps) for g in neighbours(filters)]
    result = FunnelResult(site, start, end, decide([g.name for g in steps], counts, others, k), k)
    if scope.purged_days:
        result.warnings.append(
            f"{len(scope.purged_days)} day(s) in range have only daily aggregates left: funnels cannot use them"
        )
    return result
