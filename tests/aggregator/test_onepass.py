"""A filtered page of queries reads the matching days once: the scope's own figures and its neighbours' together.

The statements DuckDB runs for one page (KPIs, a time series, visit and page panels under two filters,
whose neighbours are counted in the scope's pass, aggregator/fused.py) are recorded through a cursor that
runs them for real and keeps their text; the coded visits and pages of the range must each be read by one
statement, and every column's differences against a neighbour must come from one statement per neighbour.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import duckdb
import pytest

from aggregator.answers import Answers
from aggregator.filters import Filter
from aggregator.ingest import Ingester
from aggregator.page import Page
from aggregator.query import Querier, QueryRequest
from aggregator.settings import Settings
from aggregator.synth import write_segments
from collector.schema import Event
from tests.events import make_event

SITE = "onepass.example"
START = dt.date(2026, 11, 16)
END = dt.date(2026, 11, 18)
FILTERS = (Filter("is", "visit:browser", ("Chrome",)), Filter("is", "visit:os", ("Windows",)))


def _events(rng: random.Random) -> list[Event]:
    out = []
    for day in range(3):
        base = int(dt.datetime.combine(START + dt.timedelta(days=day), dt.time(), dt.UTC).timestamp())
        for v in range(40):
            key, t = rng.getrandbits(63), base + rng.randrange(3600, 20 * 3600)
            browser, os_ = rng.choice(("Chrome", "Firefox")), rng.choice(("Windows", "Linux"))
            for visit in range(1 + (v % 4 == 0)):  # some day keys have two visits (key_rows > 1)
                for i in range(3):
                    out.append(
                        make_event(
                            site=SITE,
                            ts=t + visit * 2000 + 40 * i,
                            day_key=key,
                            browser=browser,
                            os=os_,
                            path=rng.choice(("/", "/docs", "/pricing")),
                        )  # fmt: skip
                    )
    return out


class Recording:
    """A real DuckDB cursor that keeps the text of every statement it runs."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur, self.statements = cur, list[str]()

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        self.statements.append(sql)
        return self.cur.execute(sql, params) if params is not None else self.cur.execute(sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cur, name)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # K = 1: no row needs its profiles counted, so only the page's own passes run.
    s = Settings(data_dir=tmp_path_factory.mktemp("onepass") / "d", k_anonymity=1, duckdb_threads=2)
    write_segments(_events(random.Random(7)), s.sealed_dir, per_segment=300)
    Ingester(s).run_once()
    return s


def test_the_scope_and_its_neighbours_read_the_visits_and_pages_once(settings: Settings) -> None:
    q = Querier(settings)
    cur = Recording(q._db.cursor())
    page = Page(q.lake, q.rollups, cur, 0.0, q.goals)  # type: ignore[arg-type]
    requests = [
        QueryRequest(SITE, ("visitors", "visits", "pageviews", "bounce_rate"), (START, END), filters=FILTERS),
        QueryRequest(SITE, ("visitors",), (START, END), ("time:day",), FILTERS),
        *[QueryRequest(SITE, ("visitors",), (START, END), (d,), FILTERS) for d in ("visit:entry_page", "event:page")],
    ]
    plans = [q._plan(page, r, END) for r in requests]
    answers = Answers(settings)
    results = [answers.answer(p) for p in plans]
    assert results[0].rows and results[0].rows[0].metrics[0], "the segment has visitors"
    scope = plans[0].scope
    assert len(scope.fused_with) == 2, "both neighbours (one filter each) are counted in the scope's pass"
    t = scope.coded()
    reads = {kind: [s for s in cur.statements if f"FROM {kind}" in s] for kind in (t.visits, t.pages)}
    assert len(reads[t.visits]) == 1, reads[t.visits]
    assert len(reads[t.pages]) == 1, reads[t.pages]
    # The differences of every column against each neighbour: one statement per neighbour, not per column.
    diffs = [s for s in cur.statements if "abs(v0 - v" in s]
    assert len(diffs) == len(scope.fused_with)
    q.close()
