"""A lake with known conversions for the goals tests: two weeks of synthetic traffic plus sign-ups.

The synthetic traffic (tests/dashboards/lakes.py) converts none of these goals;
on top of it, every day of the ISO week 2026-11-16..22 (the days with data end
on the 21st), 10 visitors sign up for the "pro" plan and go on to the thank-you
page, 5 for "free" and stop, 6 only look at /signup; three "pro" visitors sign
up twice on the first day. On the 18th, 2 visitors send "Rare" after /signup
and 3 others "Newsletter": each goal alone is under K = 5, together they are
5 people on one day (an ``(other)`` row that may be shown). The week before,
6 "pro" sign-ups on the 10th give the comparisons something to compare.

Each converting visitor takes the browser, OS, network and source of a
synthetic visitor of that day, so profiles are as varied as real traffic's.
The expected numbers are counted here in plain Python (:func:`converted`),
not with the query layer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path

from collector.schema import Event
from collector.siteconfig import from_dict, save
from tests.dashboards.conftest import DEMO
from tests.dashboards.lakes import known_events, make_lake

WEEK = (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
BEFORE = (dt.date(2026, 11, 9), dt.date(2026, 11, 15))
RARE_DAY = dt.date(2026, 11, 18)
NO_GOALS = "nogoals.example"
GOALS = [
    {"event": "Signup"},
    {"event": "Signup", "props": {"plan": "pro"}, "name": "Signup: pro"},
    {"page": "/signup"},
    {"page": "/signup/thanks"},
    {"event": "Rare"},
    {"event": "Newsletter"},
]
FUNNELS = [
    {"name": "Signing up", "steps": ["Visit /signup", "Signup", "Visit /signup/thanks"]},
    {"name": "Rare path", "steps": ["Visit /signup", "Rare"]},
]
CONFIG = {
    "format": 1,
    "sites": [
        {
            "domain": DEMO,
            "custom_events": ["Signup", "Rare", "Newsletter"],
            "prop_keys": ["plan", "url"],
            "goals": GOALS,
            "funnels": FUNNELS,
        },
        {"domain": NO_GOALS, "custom_events": [], "prop_keys": []},
    ],
}


def _at(day: dt.date, seconds: int) -> int:
    return int(dt.datetime.combine(day, dt.time(9), dt.UTC).timestamp()) + seconds


def conversions(pool: list[Event]) -> list[Event]:
    rng = random.Random(16)
    out: list[Event] = []
    key = 1 << 50

    def visitor(day: dt.date, steps: list[tuple[int, str, str, dict[str, str]]]) -> None:
        nonlocal key
        key += 1
        base = rng.choice(
            [e for e in pool if e.name == "pageview" and dt.datetime.fromtimestamp(e.ts, dt.UTC).date() == day]
        )
        start = rng.randrange(0, 8 * 3600)
        for offset, name, path, props in steps:
            out.append(
                dataclasses.replace(
                    base, ts=_at(day, start + offset), name=name, path=path, day_key=key,
                    props=tuple(sorted(props.items())), engaged_ms=None, scroll_depth=None,
                )
            )  # fmt: skip

    page, thanks = (0, "pageview", "/signup", {}), (60, "pageview", "/signup/thanks", {})
    for i in range((WEEK[1] - WEEK[0]).days):  # the 16th to the 21st
        day = WEEK[0] + dt.timedelta(days=i)
        for n in range(10):
            twice = [(40, "Signup", "/signup", {"plan": "pro"})] if i == 0 and n < 3 else []
            visitor(day, [page, (30, "Signup", "/signup", {"plan": "pro"}), *twice, thanks])
        for _ in range(5):
            visitor(day, [page, (30, "Signup", "/signup", {"plan": "free"})])
        for _ in range(6):
            visitor(day, [page])
    for _ in range(2):
        visitor(RARE_DAY, [page, (30, "Rare", "/signup", {})])
    for _ in range(3):
        visitor(RARE_DAY, [(0, "Newsletter", "/", {})])
    for _ in range(6):
        visitor(dt.date(2026, 11, 10), [page, (30, "Signup", "/signup", {"plan": "pro"}), thanks])
    return out


def goal_events() -> list[Event]:
    events = known_events()
    return events + conversions([e for e in events if e.site == DEMO])


def make_goal_lake(data_dir: Path, events: list[Event]) -> Path:
    data_dir.mkdir(parents=True)
    save(from_dict(json.loads(json.dumps(CONFIG))), data_dir / "sites.json")
    return make_lake(data_dir, events)


def _day(e: Event) -> dt.date:
    return dt.datetime.fromtimestamp(e.ts, dt.UTC).date()


def converts(goal: dict[str, object], e: Event) -> bool:
    if "page" in goal:
        return e.name == "pageview" and e.path == goal["page"]
    wanted = goal.get("props") or {}
    return e.name == goal["event"] and all(dict(e.props).get(k) == v for k, v in wanted.items())  # type: ignore[union-attr]


def goal_name(goal: dict[str, object]) -> str:
    return str(goal.get("name") or (f"Visit {goal['page']}" if "page" in goal else goal["event"]))


def converted(events: list[Event], goal: dict[str, object], span: tuple[dt.date, dt.date]) -> tuple[int, int]:
    """(converting visitors, conversions) of a goal over ``span``: visitors are (UTC day, day key)."""
    hits = [e for e in events if e.site == DEMO and span[0] <= _day(e) <= span[1] and converts(goal, e)]
    return len({(_day(e), e.day_key) for e in hits}), len(hits)
