"""The conversions table (aggregator/conversions.py): built with the per-visit tables for the goals in force,
it answers the Goals panel and funnels exactly as the hits do; days built for other goals, days without it,
and a goal added after the tables were built still count right, and a rebuild touches only its files.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from aggregator import rollupbuild
from aggregator.lake import Lake
from aggregator.query import Querier, QueryRequest
from aggregator.rollup import BUILT_KINDS
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from collector.schema import Event
from collector.siteconfig import parse
from tests.aggregator.test_funnel_hits import _oracle
from tests.aggregator.test_goals import DAY, NOW, SITE, at, lake
from tests.events import make_event

DAYS = (DAY, DAY + dt.timedelta(days=3))  # visits of the third day's evening run past midnight
GOALS: list[dict[str, Any]] = [
    {"page": "/pricing"},
    {"page": "/order*"},
    {"page": "/order/thanks"},
    {"event": "Order"},
    {"event": "Order", "props": {"plan": "pro"}, "name": "Pro order"},
    {"page": "/order*", "name": "Ordering pages"},  # the same definition as "Visit /order*", another name
    {"event": "Signup"},
]
FUNNELS = (
    ("Visit /pricing", "Visit /order*", "Order", "Visit /order/thanks"),
    ("Visit /pricing", "Visit /order*", "Visit /pricing", "Pro order"),  # a step repeated
    ("Order", "Order"),
    ("Ordering pages", "Visit /order/thanks", "Signup"),
)
METRICS = ("visitors", "events", "pageviews", "conversion_rate", "visits")  # visits: grouped per visit


def _ev(key: int, ts: int, path: str, name: str = "pageview", plan: str | None = None, isp: str = "A") -> Event:
    props = (("plan", plan),) if plan else ()
    engaged = 15_000 if name == "engagement" else None
    return make_event(site=SITE, ts=ts, day_key=key, path=path, name=name, props=props, isp=isp, engaged_ms=engaged)


def _events(seed: int = 16) -> list[Event]:
    """Visitors on three days, several visits each, visits whose ISP changes midway (two visit parts), visits
    across midnight, goal pages and events repeated within an hour (merged rows), properties on the events."""
    rng = random.Random(seed)
    pages = ["/pricing", "/order", "/order/step2", "/order/thanks", "/about"]
    events = []
    for key in range(1, 400):
        t = at(rng.choice([0, 8, 12, 23]), rng.randrange(60), day=DAY + dt.timedelta(days=key % 3))
        isp = rng.choice(["A", "B"])
        for _ in range(rng.randrange(1, 14)):
            t += rng.choice([0, 5, 40, 200, 900, 2400])
            if rng.random() < 0.08:
                isp = "A" if isp == "B" else "B"
            r, page = rng.random(), rng.choice(pages)
            if r < 0.15:
                events.append(_ev(key, t, page, "Order", rng.choice(["pro", "free"]), isp))
            elif r < 0.2:
                events.append(_ev(key, t, page, "Signup", isp=isp))
            elif r < 0.3:
                events.append(_ev(key, t, page, "engagement", isp=isp))
            else:
                events.append(_ev(key, t, page, isp=isp))
    return events


def _days(events: list[Event]) -> int:
    return len({dt.datetime.fromtimestamp(e.ts, dt.UTC).date() for e in events})


def _conv_files(s: Settings) -> list[Path]:
    return sorted(Lake(s.lake_dir).visits_dir.rglob("*-conv-*.parquet"))


def _answers(s: Settings, k: int = 1) -> tuple[object, ...]:
    q = Querier(s)
    panel = q.run(QueryRequest(SITE, METRICS, DAYS, ("event:goal",)), NOW)
    by_day = q.run(QueryRequest(SITE, ("visitors", "events"), DAYS, ("event:goal", "time:day")), NOW)
    funnels = [[(x.visitors, x.dropoff, x.median_seconds) for x in q.funnel(SITE, DAYS, f, NOW).steps] for f in FUNNELS]
    return panel.rows, by_day.rows, funnels


def test_conversions_files_answer_as_the_hits_do(tmp_path: Path) -> None:
    events = _events()
    s = lake(tmp_path, events, GOALS, rollups=True)
    files = _conv_files(s)
    distinct = len(GOALS) - 1  # two goals share one definition
    assert len(files) == _days(events) * distinct  # one file per day and goal definition
    built = _answers(s)
    panel, _, funnels = built
    assert {r.dimensions[0] for r in panel} == {
        g.get("name") or (f"Visit {g['page']}" if "page" in g else g["event"]) for g in GOALS
    }  # type: ignore[attr-defined]
    config = {g.name: g for g in parse((s.data_dir / "sites.json").read_text()).sites[0].goals}
    for names, steps in zip(FUNNELS, funnels, strict=True):  # type: ignore[call-overload]
        visitors, medians = _oracle(events, [config[n] for n in names])
        assert [v for v, _, _ in steps] == visitors, names
        assert [m for _, _, m in steps] == medians, names
    # The same lake without the files (as a lake built before them): every answer from the hits.
    for path in files:
        path.unlink()
    assert _answers(s) == built
    # One day without its files (today, before its refresh), one day whose files lack a goal: those days'
    # hits, the other days' files.
    assert refresh_rollups(s, NOW) == _days(events)
    files = _conv_files(s)
    assert len(files) == _days(events) * distinct
    for path in files:
        if f"day={DAY}" in str(path) or (f"day={DAY + dt.timedelta(days=1)}" in str(path) and path == files[-1]):
            path.unlink()
    assert _answers(s) == built
    # And a day without any per-visit table (computed in memory, as today between a batch and its refresh).
    for path in Lake(s.lake_dir).visits_day_dir(SITE, DAY + dt.timedelta(days=2)).glob("*.parquet"):
        path.unlink()
    assert _answers(s) == built


def test_rows_folded_into_other_are_counted_exactly(tmp_path: Path) -> None:
    # Under K the small goals fold into (other), whose visitors are counted again over their union: read from
    # the conversions rows as from the hits.
    rare = [_ev(1000 + i, at(10, i), f"/rare{i % 2}") for i in range(6)]  # two goals of 3 visitors, on one day
    s = lake(tmp_path, _events(7) + rare, [*GOALS, {"page": "/rare0"}, {"page": "/rare1"}], k=5, rollups=True)
    assert _conv_files(s)
    q = QueryRequest(SITE, ("visitors", "events"), DAYS, ("event:goal",))
    built = Querier(s).run(q, NOW)
    assert [r.metrics for r in built.rows if r.dimensions[0] == "(other)"] == [(6, 6)]
    for path in _conv_files(s):
        path.unlink()
    assert Querier(s).run(q, NOW).rows == built.rows


def test_a_goal_added_after_the_tables_were_built_counts_right(tmp_path: Path) -> None:
    events = _events(3)
    s = lake(tmp_path, events, GOALS[:3], rollups=True)
    visits = Lake(s.lake_dir).visits_dir
    tables = {p: p.stat().st_mtime_ns for p in visits.rglob("*.parquet") if "-conv-" not in p.name}
    before = _conv_files(s)
    assert len(before) == _days(events) * 3
    # Today an admin adds a goal and a funnel through it: the days' files were built for the other goals.
    config = json.loads((s.data_dir / "sites.json").read_text())
    config["sites"][0]["goals"] = GOALS
    (s.data_dir / "sites.json").write_text(json.dumps(config))
    now = _answers(s)
    signups = {(dt.datetime.fromtimestamp(e.ts, dt.UTC).date(), e.day_key) for e in events if e.name == "Signup"}
    assert [r.metrics[0] for r in now[0] if r.dimensions[0] == "Signup"] == [len(signups)]  # type: ignore[attr-defined]
    # The next rollup rebuilds the conversions files alone, from the hits: the other tables stay as they were.
    assert refresh_rollups(s, NOW) == _days(events)
    assert {p: p.stat().st_mtime_ns for p in visits.rglob("*.parquet") if "-conv-" not in p.name} == tables
    after = _conv_files(s)
    assert len(after) == _days(events) * (len(GOALS) - 1) and not set(before) & set(after)
    assert _answers(s) == now
    assert refresh_rollups(s, NOW) == 0


def _contents(s: Settings) -> dict[str, list[tuple[object, ...]]]:
    """Every rollup, per-visit and conversions file, by its path under the lake: its rows (in an order of their
    own: rows a file's sort order ties may come in either order)."""
    root = Lake(s.lake_dir)
    return {
        str(p.relative_to(s.lake_dir)): sorted(
            duckdb.execute("SELECT * FROM read_parquet($p)", {"p": str(p)}).fetchall(), key=repr
        )
        for base in (root.rollups_dir, root.visits_dir)
        for p in sorted(base.rglob("*.parquet"))
    }


def test_days_built_in_one_batch_are_the_files_each_day_built_alone_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _events()
    batched = lake(tmp_path / "a", events, GOALS)
    alone = Settings(data_dir=tmp_path / "b" / "d", k_anonymity=1, duckdb_threads=2)
    shutil.copytree(batched.data_dir, alone.data_dir)
    assert refresh_rollups(batched, NOW) == _days(events)  # every day in one batch (they are small)
    monkeypatch.setattr(rollupbuild, "BATCH_BYTES", 0)  # every day a batch of its own
    assert refresh_rollups(alone, NOW) == _days(events)
    one, each = _contents(batched), _contents(alone)
    assert sorted(one) == sorted(each)
    assert len(one) == _days(events) * (1 + len(BUILT_KINDS) + len(GOALS) - 1)  # rollup, tables and slices, conversions
    for name, rows in one.items():
        assert rows == each[name], name
    # Visits numbered within a day key (vno) on every day, not only on the first: what a batch could shift.
    split = [p for p in one if "-visits-" in p and any(r[3] > 0 for r in one[p])]
    assert len(split) == _days(events), split
