"""The fused neighbour counts (aggregator/fused.py) equal each neighbour's own scope, row by row.

A lake built to exercise every counting path: day keys with several visits
(gaps over 30 minutes) and several visit parts (the browser changes within a
visit), engagement-only visits, custom events, and filters of every shape
the fused pass takes (several leaves, multi-value leaves, nested and/or/not,
negations, case-insensitive, substrings and patterns).
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from aggregator.asks import ask
from aggregator.filters import And, Expr, Filter, Not, Or, neighbours
from aggregator.ingest import Ingester
from aggregator.kanon import Diff, Key
from aggregator.page import Page
from aggregator.probe import ScopeProbe
from aggregator.query import Querier, QueryRequest
from aggregator.settings import Settings
from aggregator.synth import write_segments
from collector.schema import Event
from tests.events import make_event

SITE = "fused.example"
START = dt.date(2026, 11, 16)
END = dt.date(2026, 11, 19)
NOW = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
SYSTEMS = ("Windows", "macOS", "Linux", "iOS")
SOURCES = (None, "Google", "GitHub", "Bing")


def _events(rng: random.Random) -> list[Event]:
    out = []
    for day in range(4):
        base = int(dt.datetime.combine(START + dt.timedelta(days=day), dt.time(), dt.UTC).timestamp())
        for v in range(60):
            key = rng.getrandbits(63)
            browser, os_ = rng.choice(BROWSERS), rng.choice(SYSTEMS)
            source = rng.choice(SOURCES)
            t = base + rng.randrange(3600, 10 * 3600)
            for visit in range(1 + (v % 5 == 0)):  # some day keys come back after 30 minutes: two visits
                t += visit * 1900
                for i in range(rng.randrange(1, 4)):
                    if v % 7 == 0 and i == 1:
                        browser = rng.choice(BROWSERS)  # a visit whose browser changes midway: two parts
                    fields = dict(
                        site=SITE, ts=t + 30 * i, day_key=key, browser=browser, os=os_,
                        device="mobile" if os_ == "iOS" else "desktop", referrer_source=source,
                        path=rng.choice(("/", "/Docs/a", "/docs/b", "/pricing", f"/p/{v % 9}")),
                    )  # fmt: skip
                    if v % 11 == 0:  # engagement only: no counted event, no visitor
                        fields |= dict(name="engagement", engaged_ms=4000)
                    elif i == 2:
                        fields |= dict(name="Signup")
                    out.append(make_event(**fields))
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("fused") / "d", k_anonymity=3, duckdb_threads=2)
    write_segments(_events(random.Random(15)), settings.sealed_dir, per_segment=400)
    Ingester(settings).run_once()
    return settings


CHROME = Filter("is", "visit:browser", ("Chrome",))
FILTERS: list[tuple[Expr, ...]] = [
    (CHROME, Filter("is", "visit:os", ("Windows",))),
    (Or((CHROME, Filter("is", "visit:os", ("iOS",)))),),
    (Filter("is", "visit:browser", ("Chrome", "Firefox", "Safari")),),
    (Filter("is_not", "visit:os", ("Windows", "Linux")), Filter("contains", "visit:entry_page", ("/docs",), False)),
    (Not(And((CHROME, Filter("is", "visit:device", ("mobile",))))), Filter("matches", "visit:source", ("^G",))),
    (Filter("is", "visit:browser", ("chrome", "EDGE"), False), Filter("contains_not", "visit:exit_page", ("/p/",))),
]
DIMS = ((), ("time:day",), ("visit:browser",), ("visit:entry_page",), ("visit:source",), ("event:page",),
        ("event:name",), ("time:hour",), ("visit:browser", "visit:os"))  # fmt: skip


def _rows(page: Page, sql: str) -> dict[tuple[object, ...], int]:
    return {tuple(r[:-1]): int(r[-1]) for r in page.cur.execute(sql).fetchall() if r[-1]}


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
def test_each_neighbours_visitors_are_its_own_scopes(lake: Settings, filters: tuple[Expr, ...]) -> None:
    q = Querier(lake)
    cur = q._db.cursor()
    page = Page(q.lake, q.rollups, cur, 0.0, q.goals)
    for dims in DIMS:
        q._plan(page, QueryRequest(SITE, ("visitors", "pageviews"), (START, END), dims, filters), END)
    scope = page.scope(SITE, START, END, filters)
    assert scope.fused_with, "these filters have filtered neighbours"
    main = _rows(page, f"SELECT dimension, day, value, visitors FROM {scope.day_rows()}")
    assert main
    fused = scope.fused(scope.fused_with[0])
    assert fused is not None
    table = fused[0]
    for j, other in enumerate([scope, *scope.fused_with]):
        assert j == 0 or scope.fused(other) == (table, j)  # v0 is the scope's own, v{j} its j-th neighbour's
        got = _rows(page, f"SELECT dimension, day, value, v{j} FROM {table}")
        own = main if j == 0 else _rows(page, f"SELECT dimension, day, value, visitors FROM {other.day_rows()}")
        assert got == own, other.filters
    q.close()


def probes(
    q: Querier,
    filters: tuple[Expr, ...],
    dims: tuple[str, ...],
    *,
    fused: bool,
    days: tuple[str, dt.date, dt.date] = (SITE, START, END),
    metrics: tuple[str, ...] = ("visitors",),
) -> ScopeProbe:
    """A probe of ``dims`` under ``filters`` (asking ``metrics``) with its neighbours (asking the visitors), counted
    together (``fused``: registered with the scope) or each alone; ``days``: site, first and last day."""
    page = Page(q.lake, q.rollups, q._db.cursor(), 0.0, q.goals)
    site, start, end = days
    a, total = ask(dims, start), ask((), start)
    scope = page.scope(site, start, end, filters)
    mode = scope.need(a, metrics)
    scope.need(total, metrics)
    others = []
    for g in neighbours(filters):
        other = page.scope(site, start, end, g)
        others.append((other, other.need(a, ("visitors",))))
        other.need(total, ("visitors",))
        if fused:
            scope.add_neighbour(other, others[-1][1])
    return ScopeProbe(scope, a, mode, others, False)


def _nonzero(diffs: dict[Key, Diff]) -> dict[Key, Diff]:
    return {k: d for k, d in diffs.items() if d.total}


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
@pytest.mark.parametrize("dims", [(), ("visit:browser",), ("visit:entry_page",)], ids=str)
def test_the_profiles_a_row_gains_or_loses_are_counted_the_same(
    lake: Settings, filters: tuple[Expr, ...], dims: tuple[str, ...]
) -> None:
    q = Querier(lake)
    together, alone = probes(q, filters, dims, fused=True), probes(q, filters, dims, fused=False)
    keys = sorted(together.scope.groups(together.a, together.mode))
    assert keys
    for n in range(together.neighbours):
        # A value neither gains nor loses on (Diff(0, 0)) is the same as no entry for the rules (kanon.decide).
        assert _nonzero(together.diffs(n)) == _nonzero(alone.diffs(n))
        assert together.diff_profiles(n, keys) == alone.diff_profiles(n, keys)
    assert together.scope.fused_with and not alone.scope.fused_with
    q.close()
