"""Funnels read their steps from the hits table (aggregator/funnels.py): the times inside a merged hits row
are exact, built files answer as days computed in memory do, and a lake whose per-visit tables an older
version built still answers, then is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
from pathlib import Path

import duckdb
import pytest

from aggregator.lake import Lake, sql_path
from aggregator.metrics import VISIT_GAP_SECONDS
from aggregator.query import Querier, QueryRequest
from aggregator.rollup import VISITS_FORMAT
from aggregator.rollupbuild import refresh_rollups
from collector.schema import Event
from collector.siteconfig import Goal, parse
from tests.aggregator.test_goals import DAY, FUNNEL_GOALS, NOW, SITE, STEPS, at, ev, funnel_events, lake


@pytest.mark.parametrize("built", [False, True], ids=["in memory", "built files"])
def test_a_step_inside_a_merged_hits_row_is_found_at_its_own_second(tmp_path: Path, built: bool) -> None:
    # Three views of /order in one hour are one hits row (first 9:00, last 9:29). /pricing at 9:10 is step 1,
    # so step 2 is the /order of 9:20 (neither the row's first second, before step 1, nor its last); the
    # Order event of 9:25 comes after it, so it is step 3 (after the row's last second it would not be).
    events = [
        ev(1, at(9), "/order"),
        ev(1, at(9, 10), "/pricing"),
        ev(1, at(9, 20), "/order"),
        ev(1, at(9, 25), "/order", "Order"),
        ev(1, at(9, 29), "/order"),
    ]
    s = lake(tmp_path, events, FUNNEL_GOALS, rollups=built)
    f = Querier(s).funnel(SITE, (DAY, DAY), STEPS[:3], NOW)
    assert [x.visitors for x in f.steps] == [1, 1, 1]
    assert [x.median_seconds for x in f.steps] == [None, 600, 300]


def _funnel(s: object) -> list[object]:
    return list(Querier(s).funnel(SITE, (DAY, DAY + dt.timedelta(days=1)), STEPS, NOW).steps)  # type: ignore[arg-type]


def test_tables_of_an_older_format_are_not_read_and_are_rebuilt(tmp_path: Path) -> None:
    s = lake(tmp_path, funnel_events(), FUNNEL_GOALS, rollups=True)
    want = _funnel(s)
    # As the code before the hits kept ts_more left a lake: the hits without it, every file of format 6.
    visits = Lake(s.lake_dir).visits_dir
    current = sorted(visits.rglob(f"*-v{VISITS_FORMAT}.parquet"))
    assert len(current) == 10  # four kinds and the slices, two days
    con = duckdb.connect()
    for path in current:
        old = path.with_name(path.name.replace(f"-v{VISITS_FORMAT}.", "-v6."))
        tmp = path.with_name("old.tmp")
        columns = "* EXCLUDE (ts_more)" if "-hits-" in path.name else "*"
        con.execute(f"COPY (SELECT {columns} FROM read_parquet({sql_path(path)})) TO {sql_path(tmp)} (FORMAT parquet)")
        path.unlink()
        os.replace(tmp, old)
    con.close()
    assert _funnel(s) == want  # the days' tables computed in memory, as for a day not built yet
    assert refresh_rollups(s, NOW) == 2
    assert sorted(visits.rglob(f"*-v{VISITS_FORMAT}.parquet")) == current
    assert not list(visits.rglob("*-v6.parquet"))
    assert _funnel(s) == want


def _oracle(events: list[Event], steps: list[Goal]) -> tuple[list[int], list[int | None]]:
    """Visitors reaching each step and the median seconds from the step before, computed the plain way."""
    by_key: dict[tuple[dt.date, int], list[Event]] = {}
    for e in sorted(events, key=lambda e: e.ts):
        by_key.setdefault((dt.datetime.fromtimestamp(e.ts, dt.UTC).date(), e.day_key), []).append(e)
    levels: dict[tuple[dt.date, int], int] = {}
    gaps: list[list[int]] = [[] for _ in steps]
    for key, evs in by_key.items():
        visits: list[list[Event]] = []
        for e in evs:  # runs with no gap over 30 minutes
            if visits and e.ts - visits[-1][-1].ts <= VISIT_GAP_SECONDS:
                visits[-1].append(e)
            else:
                visits.append([e])
        for visit in visits:
            reached: list[int] = []
            for goal in steps:  # the first event converting the step at or after the step before
                after = reached[-1] if reached else None
                hit = next((e.ts for e in visit if (after is None or e.ts >= after)
                            and goal.matches(e.name, e.path, dict(e.props))), None)  # fmt: skip
                if hit is None:
                    break
                if reached:
                    gaps[len(reached)].append(hit - reached[-1])
                reached.append(hit)
            levels[key] = max(levels.get(key, 0), len(reached))
    visitors = [sum(1 for lvl in levels.values() if lvl > k) for k in range(len(steps))]
    return visitors, [None, *(int(statistics.median(g)) if g else None for g in gaps[1:])]


@pytest.mark.parametrize("built", [False, True], ids=["in memory", "built files"])
def test_funnels_against_the_oracle(tmp_path: Path, built: bool) -> None:
    # Visitors on two days, several visits each (gaps over 30 minutes), pages and events of the steps in any
    # order, repeated within an hour (merged hits rows), a step repeated in the funnel, props on the events.
    rng = random.Random(16)
    pages = ["/pricing", "/order", "/order/thanks", "/about"]
    events = []
    for key in range(1, 160):
        day = DAY + dt.timedelta(days=key % 2)
        t = at(rng.randrange(8, 20), rng.randrange(60), day=day)
        for _ in range(rng.randrange(1, 12)):
            t += rng.choice([0, 5, 40, 200, 900, 2400])
            if rng.random() < 0.2:
                events.append(ev(key, t, rng.choice(pages), "Order", {"plan": rng.choice(["pro", "free"])}))
            else:
                events.append(ev(key, t, rng.choice(pages)))
    goals = [*FUNNEL_GOALS, {"event": "Order", "props": {"plan": "pro"}, "name": "Pro order"}]
    s = lake(tmp_path, events, goals, rollups=built)
    config = {g.name: g for g in parse((s.data_dir / "sites.json").read_text()).sites[0].goals}
    q = Querier(s)
    for names in (STEPS, ("Visit /pricing", "Visit /order", "Visit /pricing", "Pro order"), ("Order", "Order")):
        f = q.funnel(SITE, (DAY, DAY + dt.timedelta(days=1)), names, NOW)
        visitors, medians = _oracle(events, [config[n] for n in names])
        assert [x.visitors for x in f.steps] == visitors, names
        assert [x.median_seconds for x in f.steps] == medians, names
        assert visitors[0] > 0 and visitors[-1] > 0, names  # the case exercises every step


def test_codes_that_mean_other_values_on_other_days_are_matched_per_day(tmp_path: Path) -> None:
    # Steps and goals are joined to the hits by code alone when every code means one value on every day. Here
    # the second day is rewritten as if built with another hash function, under which /about has the code
    # /pricing has on the first day (and the other way round): matched by code alone, its /about views would
    # be /pricing views.
    second = DAY + dt.timedelta(days=1)
    events = [
        e for k in (1, 2, 3) for e in (ev(k, at(9, k)), ev(k, at(9, k, 30), "/pricing"), ev(k, at(9, 9), "/order"))
    ]
    events += [
        e for k in (4, 5, 6) for e in (ev(k, at(9, k, day=second), "/about"), ev(k, at(9, 9, day=second), "/order"))
    ]
    events += [ev(7, at(9, day=second), "/pricing"), ev(7, at(9, 1, day=second), "/order")]
    s = lake(tmp_path, events, FUNNEL_GOALS, rollups=True)
    q, days = Querier(s), (DAY, second)
    panel = QueryRequest(SITE, ("visitors",), days, ("event:goal",))
    want = ([x.visitors for x in q.funnel(SITE, days, STEPS[:2], NOW).steps], q.run(panel, NOW).rows)
    assert want[0] == [4, 4]
    con = duckdb.connect()
    a, b = (con.execute("SELECT hash(CAST($v AS VARCHAR))", {"v": v}).fetchone()[0] for v in ("/pricing", "/about"))  # type: ignore[index]
    swap = f"CASE WHEN {{c}} = {a} THEN {b} WHEN {{c}} = {b} THEN {a} ELSE {{c}} END"
    for path in Lake(s.lake_dir).visits_day_dir(SITE, second).glob("*.parquet"):
        kind = path.name.split("-")[1]
        column = {"dict": "code", "hits": "c_page", "pages": "c_page"}.get(kind)
        if column is None:
            continue
        where = "dimension = 'event:page'" if kind == "dict" else "true"
        swapped = f"CASE WHEN {where} THEN {swap.format(c=column)} ELSE {column} END AS {column}"
        tmp = path.with_name("swapped.tmp")
        con.execute(f"COPY (SELECT * REPLACE ({swapped}) FROM read_parquet({sql_path(path)})) TO {sql_path(tmp)} "
                    "(FORMAT parquet)")  # fmt: skip
        os.replace(tmp, path)
    con.close()
    q = Querier(s)
    assert ([x.visitors for x in q.funnel(SITE, days, STEPS[:2], NOW).steps], q.run(panel, NOW).rows) == want
