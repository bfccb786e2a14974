"""Goals, conversion rates, custom properties and funnels: Plausible's cases, and the plain-Python oracle.

Each lake is written with a site configuration (collector.siteconfig: the one
source the collector, the query layer and the dashboards read) that defines
the goals and funnels. K is 1 unless a case is about k-anonymity.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from aggregator.filters import Filter
from aggregator.ingest import Ingester
from aggregator.query import Querier, QueryError, QueryRequest
from aggregator.rollupbuild import refresh_rollups
from aggregator.settings import Settings
from aggregator.stats_api import answer
from aggregator.synth import write_segments
from collector.schema import Event
from tests.events import make_event

SITE = "goals.example"
DAY = dt.date(2021, 1, 1)
NOW = dt.datetime(2021, 1, 10, 12, tzinfo=dt.UTC)


def at(hh: int, mm: int = 0, ss: int = 0, day: dt.date = DAY) -> int:
    return int(dt.datetime.combine(day, dt.time(hh, mm, ss), dt.UTC).timestamp())


def ev(key: int, ts: int, path: str = "/", name: str = "pageview", props: dict[str, str] | None = None) -> Event:
    return make_event(site=SITE, ts=ts, day_key=key, path=path, name=name, props=tuple(sorted((props or {}).items())))


def lake(
    tmp_path: Path,
    events: list[Event],
    goals: list[dict[str, Any]],
    funnels: list[dict[str, Any]] | None = None,
    k: int = 1,
    rollups: bool = False,
) -> Settings:
    settings = Settings(data_dir=tmp_path / "d", k_anonymity=k, duckdb_threads=2)
    settings.data_dir.mkdir(parents=True)
    site = {
        "domain": SITE,
        "custom_events": sorted({e.name for e in events} - {"pageview", "engagement"}),
        "prop_keys": sorted({key for e in events for key, _ in e.props}),
        "goals": goals,
        "funnels": funnels or [],
    }
    config = {"format": 1, "sites": [site]}
    (settings.data_dir / "sites.json").write_text(json.dumps(config))
    write_segments(events, settings.sealed_dir)
    Ingester(settings).run_once()
    if rollups:
        refresh_rollups(settings, NOW)
    return settings


def ask(settings: Settings, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return answer(Querier(settings), {"site_id": SITE, "date_range": "all"} | body, NOW)


def results(reply: dict[str, Any]) -> list[tuple[list[str], list[Any]]]:
    return [(r["dimensions"], r["metrics"]) for r in reply["results"]]


def signups() -> list[Event]:
    # Three Signup events (one anonymous visitor, two by visitor 2), one pageview, and an event that is no goal.
    return [ev(1, at(0), name="Signup"), ev(2, at(0), name="Signup"), ev(2, at(0, 1), name="Signup"),
            ev(3, at(0)), ev(4, at(0), name="NotConfigured")]  # fmt: skip


def test_a_goal_filter_counts_converting_visitors_and_conversions(tmp_path: Path) -> None:
    s = lake(tmp_path, signups(), [{"event": "Signup"}])
    status, reply = ask(s, {"metrics": ["visitors", "events"], "filters": [["is", "event:goal", ["Signup"]]]})
    assert status == 200 and results(reply) == [([], [2, 3])]
    f = ["is", "event:goal", ["signup"], {"case_sensitive": False}]
    assert results(ask(s, {"metrics": ["visitors", "events"], "filters": [f]})[1]) == [([], [2, 3])]
    status, reply = ask(s, {"metrics": ["visitors"], "filters": [["is", "event:goal", ["Register"]]]})
    assert status == 400 and "The goal `Register` is not configured for this site" in reply["error"]
    status, reply = ask(s, {"metrics": ["visitors"], "filters": [["not", ["is", "event:goal", ["Signup"]]]]})
    assert status == 400 and "can only be filtered at the top level" in reply["error"]


def test_wildcard_page_goals_and_mixed_goals(tmp_path: Path) -> None:
    events = [ev(1, at(0), "/blog/post-1"), ev(2, at(0), "/blog/post-2"), ev(2, at(0, 1), "/blog"), ev(3, at(0), "/")]
    s = lake(tmp_path / "a", events, [{"page": "/blog**"}])
    assert results(
        ask(s, {"metrics": ["visitors", "pageviews"], "filters": [["is", "event:goal", ["Visit /blog**"]]]})[1]
    ) == [([], [2, 3])]
    events = [
        ev(1, at(0), "/account/register"),
        ev(2, at(0), "/register"),
        ev(2, at(0, 1), name="Signup"),
        ev(3, at(0)),
    ]
    s = lake(tmp_path / "b", events, [{"event": "Signup"}, {"page": "/**register"}])
    f = ["is", "event:goal", ["Signup", "Visit /**register"]]
    assert results(ask(s, {"metrics": ["visitors", "events", "pageviews"], "filters": [f]})[1]) == [([], [2, 3, 2])]


def test_goal_dimension_and_conversion_rate(tmp_path: Path) -> None:
    events = [ev(1, at(0), name="Signup"), ev(1, at(0, 1), name="Signup"), ev(2, at(0), "/blog"),
              ev(3, at(0), "/blog/post"), ev(4, at(0))]  # fmt: skip
    s = lake(tmp_path / "a", events, [{"event": "Signup"}, {"page": "/blog**"}])
    status, reply = ask(s, {"metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["event:goal"]})
    assert status == 200
    assert results(reply) == [(["Visit /blog**"], [2, 2, 50.0]), (["Signup"], [1, 2, 25.0])]
    # An event converts every goal it matches; no goals configured, no rows.
    events = [ev(1, at(0), "/blog"), ev(1, at(0, 1), "/blog/post-1"), ev(1, at(0, 2), "/blog/post-2"),
              ev(2, at(0), "/blog/something/post"), ev(3, at(0), "/different/page/post")]  # fmt: skip
    s = lake(tmp_path / "b", events, [{"page": "/**/post"}, {"page": "/blog**"}])
    got = dict(
        (d[0], m) for d, m in results(ask(s, {"metrics": ["visitors", "pageviews"], "dimensions": ["event:goal"]})[1])
    )
    assert got == {"Visit /blog**": [2, 4], "Visit /**/post": [2, 2]}
    s = lake(tmp_path / "c", events, [])
    assert results(ask(s, {"metrics": ["visitors"], "dimensions": ["event:goal"]})[1]) == []
    status, reply = ask(s, {"metrics": ["conversion_rate"], "dimensions": ["event:page"]})
    assert status == 400 and "can only be queried with event:goal filters or dimensions" in reply["error"]


def test_group_conversion_rate(tmp_path: Path) -> None:
    events = [
        ev(1, at(0), "/en/register"),
        ev(2, at(0), "/en/register", "Signup"),
        ev(3, at(0), "/en/register", "Signup"),
        ev(4, at(0), "/it/register", "Signup"),
        ev(4, at(0, 1), "/it/register", "Signup"),
        ev(5, at(0), "/it/register"),
    ]
    s = lake(tmp_path, events, [{"event": "Signup"}])
    body = {"metrics": ["visitors", "events", "group_conversion_rate"], "dimensions": ["event:page"],
            "filters": [["is", "event:goal", ["Signup"]]]}  # fmt: skip
    assert results(ask(s, body)[1]) == [(["/en/register"], [2, 2, 66.67]), (["/it/register"], [1, 2, 50.0])]


def test_goal_with_a_property_and_property_filters(tmp_path: Path) -> None:
    events = [ev(1, at(0)), ev(1, at(0, 1), name="Signup", props={"method": "email"}),
              ev(2, at(0)), ev(2, at(0, 1), name="Signup", props={"method": "google"}), ev(3, at(0))]  # fmt: skip
    s = lake(tmp_path / "a", events, [{"event": "Signup", "props": {"method": "email"}}])
    body = {"metrics": ["visitors", "events", "conversion_rate"], "filters": [["is", "event:goal", ["Signup"]]]}
    assert results(ask(s, body)[1]) == [([], [1, 1, 33.33])]
    # Properties: "(none)" is a missing key for is / is_not; the other operators need the key.
    events = [ev(i, at(0), name="Purchase", props={"cost": c}) for i, c in enumerate(["16", "16", "16", "14", "14"])]
    events.append(ev(9, at(0), name="Purchase"))
    s = lake(tmp_path / "b", events, [{"event": "Purchase"}])
    body = {
        "metrics": ["visitors"],
        "dimensions": ["event:props:cost"],
        "filters": [["is", "event:name", ["Purchase"]]],
    }
    assert results(ask(s, body)[1]) == [(["16"], [3]), (["14"], [2]), (["(none)"], [1])]
    names = ["large-1", "Small-1", "mall-1", "SMALL-2", "small-2"]
    events = [ev(i, at(0), props={"name": n}) for i, n in enumerate(names)] + [ev(9, at(0))]
    s = lake(tmp_path / "c", events, [])
    f = ["contains", "event:props:name", ["maLL"], {"case_sensitive": False}]
    assert results(ask(s, {"metrics": ["visitors"], "filters": [f]})[1]) == [([], [4])]
    f = ["contains_not", "event:props:name", ["maLL"], {"case_sensitive": False}]
    assert results(ask(s, {"metrics": ["visitors"], "filters": [f]})[1]) == [([], [1])]  # large-1; not the keyless one
    f = ["is_not", "event:props:name", ["large-1"]]
    assert results(ask(s, {"metrics": ["visitors"], "filters": [f]})[1]) == [([], [5])]  # the keyless one too


def test_goals_against_the_oracle(tmp_path: Path) -> None:
    rng = random.Random(7)
    events = []
    for key in range(300):
        day = DAY + dt.timedelta(days=key % 3)
        t = at(8, day=day) + rng.randrange(3600)
        for i in range(rng.randrange(1, 6)):
            page = rng.choice(["/", "/pricing", "/order", "/blog/a", "/blog/b", "/careers/x/applied"])
            events.append(ev(key, t + 60 * i, page))
            if rng.random() < 0.2:
                events.append(ev(key, t + 60 * i + 5, page, "Order", {"plan": rng.choice(["Basic", "Business"])}))
    goals = [{"page": "/pricing"}, {"page": "/blog/*"}, {"page": "/careers/*/applied"}, {"event": "Order"},
             {"event": "Order", "props": {"plan": "Business"}, "name": "Business order"}]  # fmt: skip
    s = lake(tmp_path, events, goals, rollups=True)
    q = Querier(s)
    got = q.run(QueryRequest(SITE, ("visitors", "events", "conversion_rate"), (DAY, DAY + dt.timedelta(days=2)),
                             ("event:goal",)), NOW)  # fmt: skip
    total = len({(dt.datetime.fromtimestamp(e.ts, dt.UTC).date(), e.day_key) for e in events})
    matchers = {
        "Visit /pricing": lambda e: e.name == "pageview" and e.path == "/pricing",
        "Visit /blog/*": lambda e: e.name == "pageview" and e.path.startswith("/blog/"),
        "Visit /careers/*/applied": lambda e: e.name == "pageview" and e.path == "/careers/x/applied",
        "Order": lambda e: e.name == "Order",
        "Business order": lambda e: e.name == "Order" and dict(e.props).get("plan") == "Business",
    }
    want = {}
    for name, match in matchers.items():
        conv = [e for e in events if match(e)]
        visitors = len({(dt.datetime.fromtimestamp(e.ts, dt.UTC).date(), e.day_key) for e in conv})
        want[(name,)] = (visitors, len(conv), round(100 * visitors / total, 2))
    assert {r.dimensions: r.metrics for r in got.rows} == want


def funnel_events() -> list[Event]:
    return [
        # 1: the whole funnel in order, with other events between and the second step repeated
        ev(1, at(9), "/pricing"),
        ev(1, at(9, 1), "/about"),
        ev(1, at(9, 2), "/order"),
        ev(1, at(9, 3), "/order"),
        ev(1, at(9, 4), "/order", "Order"),
        ev(1, at(9, 5), "/order/thanks"),
        # 2: steps out of order: order before pricing (only the pricing step counts, then order again later)
        ev(2, at(9), "/order"),
        ev(2, at(9, 1), "/pricing"),
        ev(2, at(9, 2), "/order"),
        # 3: skips step 2: enters, never reaches /order, orders anyway (does not count past step 1)
        ev(3, at(9), "/pricing"),
        ev(3, at(9, 1), "/order", "Order"),
        # 4: two visits (a gap over 30 minutes): steps in different visits do not chain
        ev(4, at(9), "/pricing"),
        ev(4, at(10), "/order"),
        # 5: across midnight: the day key changes, so does the visit
        ev(5, at(23, 59, 30), "/pricing"),
        ev(6, at(0, 0, 10, day=DAY + dt.timedelta(days=1)), "/order"),
    ]


FUNNEL_GOALS = [{"page": "/pricing"}, {"page": "/order"}, {"event": "Order"}, {"page": "/order/thanks"}]
STEPS = ("Visit /pricing", "Visit /order", "Order", "Visit /order/thanks")


def test_funnel_ordering_repeats_skips_and_midnight(tmp_path: Path) -> None:
    s = lake(tmp_path, funnel_events(), FUNNEL_GOALS, [{"name": "Ordering", "steps": list(STEPS)}])
    f = Querier(s).funnel(SITE, (DAY, DAY + dt.timedelta(days=1)), STEPS, NOW)
    assert [(x.name, x.visitors) for x in f.steps] == [
        ("Visit /pricing", 5),  # 1, 2, 3, 4, 5
        ("Visit /order", 2),  # 1, and 2 (its /order after /pricing)
        ("Order", 1),
        ("Visit /order/thanks", 1),
    ]
    assert [x.dropoff for x in f.steps] == [None, 3, 1, 0]
    assert [x.conversion_rate for x in f.steps] == [100.0, 40.0, 20.0, 20.0]
    assert f.steps[1].median_seconds == 90  # median of 120 s (1) and 60 s (2); 4 never (another visit)
    # Under a filter: only visitors whose matching events make the steps.
    g = Querier(s).funnel(SITE, (DAY, DAY), STEPS[:2], NOW, (Filter("is", "visit:entry_page", ("/pricing",)),))
    assert [x.visitors for x in g.steps] == [4, 1]
    with pytest.raises(QueryError, match="not a goal"):
        Querier(s).funnel(SITE, (DAY, DAY), ("Visit /pricing", "Nope"), NOW)


def test_funnel_steps_are_k_anonymous(tmp_path: Path) -> None:
    events = [e for i in range(10, 40) for e in (ev(i, at(9, i % 50)), ev(i, at(9, i % 50, 30), "/pricing"))]
    events += [ev(i, at(10, i), "/order") for i in range(10, 17)]  # 7 reach step 2 (but in another visit? no: same)
    events += [ev(1, at(11), "/pricing"), ev(1, at(11, 1), "/order"), ev(1, at(11, 2), "/order", "Order")]  # 1 orders
    s = lake(tmp_path, events, FUNNEL_GOALS, k=5)
    f = Querier(s).funnel(SITE, (DAY, DAY), STEPS[:3], NOW)
    assert f.steps[0].visitors == 31 and f.steps[2].visitors is None  # one person ordered: not shown


def test_funnel_through_the_api_and_the_command_line(tmp_path: Path) -> None:
    from aggregator.stats_api import funnel_answer
    from tests.aggregator.conftest import run_cli

    s = lake(tmp_path, funnel_events(), FUNNEL_GOALS, [{"name": "Ordering", "steps": list(STEPS)}])
    body = {"site_id": SITE, "date_range": ["2021-01-01", "2021-01-02"], "funnel": "Ordering"}
    status, reply = funnel_answer(Querier(s), body, NOW)
    assert status == 200 and [x["visitors"] for x in reply["steps"]] == [5, 2, 1, 1]
    assert reply["query"]["steps"] == list(STEPS)
    status, reply = funnel_answer(Querier(s), body | {"funnel": "Nope"}, NOW)
    assert status == 400 and "no funnel" in reply["error"]
    out = run_cli(
        s,
        "funnel",
        "--json",
        json.dumps({**body, "steps": ["Visit /pricing", "Order"]}).replace('"funnel": "Ordering", ', ""),
    )
    assert out.returncode == 0, out.stderr
    assert [x["name"] for x in json.loads(out.stdout)["steps"]] == ["Visit /pricing", "Order"]


def test_conversion_rates_compared_with_a_period_without_conversions(tmp_path: Path) -> None:
    # Signups on the second day only: compared with the first day, the goal's row has no row before it (and a
    # filtered series compared has empty buckets); a conversion rate of nothing is 0 there, and has no change.
    events = [ev(1, at(9)), ev(2, at(9)), ev(3, at(9, day=DAY + dt.timedelta(days=1)))]
    events += [ev(3, at(9, 1, day=DAY + dt.timedelta(days=1)), name="Signup")]
    s = lake(tmp_path, events, [{"event": "Signup"}])
    second = (DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=1))
    got = Querier(s).run(
        QueryRequest(SITE, ("visitors", "events", "conversion_rate"), second, ("event:goal",),
                     comparison="previous_period"), NOW)  # fmt: skip
    (row,) = got.rows
    assert row.metrics == (1, 1, 100.0)
    assert row.comparison is not None and row.comparison.metrics == (0, 0, 0) and row.comparison.change[2] is None
    signup = (Filter("is", "event:goal", ("Signup",)),)
    got = Querier(s).run(
        QueryRequest(SITE, ("visitors", "group_conversion_rate"), (DAY, second[1]), ("time:day",), signup,
                     comparison="previous_period"), NOW)  # fmt: skip
    assert [r.metrics for r in got.rows] == [(1, 100.0), (0, 0)]
