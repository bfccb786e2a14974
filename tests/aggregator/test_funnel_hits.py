"""Funnels read their steps from the hits table (aggregator/funnels.py): the times inside a merged hits row
are exact, built files answer as days computed in memory do, and a lake whose per-visit tables an older
version built still answers, then is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from aggregator.lake import Lake, sql_path
from aggregator.query import Querier
from aggregator.rollup import VISITS_FORMAT, refresh_rollups
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
    assert len(current) == 8  # four kinds, two days
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
