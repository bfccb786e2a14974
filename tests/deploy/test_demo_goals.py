"""`make run`'s demo exercises the demo site's goals: its traffic converts every goal and walks every
funnel (with drop-off), and its pages have a form or link for every goal, all as the configuration says."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from collections import defaultdict
from types import ModuleType

from aggregator.synth import Traffic, generate
from collector.siteconfig import DEMO_SITE, demo_site
from tests import web
from tests.conftest import ROOT, free_port

DEMO_DIR = ROOT / "deploy" / "local" / "demo-site"


def _stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack", ROOT / "deploy" / "local" / "stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_traffic_converts_every_goal_and_walks_every_funnel() -> None:
    stack = _stack()
    start = dt.date(2026, 11, 1)
    base = generate(Traffic(start=start, days=7, visitors_per_day={DEMO_SITE: 120}, seed=5))
    events = stack.goal_traffic(base, per_day=40, seed_=5)
    site = demo_site()
    visitors: dict[str, set[tuple[dt.date, int]]] = defaultdict(set)
    for e in events:
        day = dt.datetime.fromtimestamp(e.ts, dt.UTC).date()
        for goal in site.goals:
            if goal.matches(e.name, e.path, dict(e.props)):
                visitors[goal.name].add((day, e.day_key))
    # Every goal converts, for more than K visitors a week (so the Goals panel can show it).
    assert {g.name for g in site.goals} == set(visitors), set(g.name for g in site.goals) - set(visitors)
    assert all(len(v) >= 5 for v in visitors.values()), {k: len(v) for k, v in visitors.items()}
    for funnel in site.funnels:
        reached = [len(visitors[step]) for step in funnel.steps]
        assert reached[0] > reached[-1] > 0, (funnel.name, reached)  # people drop out along the way
    # Property values are stored ones: downloads as file names, outbound links as hosts.
    urls = {dict(e.props).get("url") for e in events if e.name in ("File Download", "Outbound Link: Click")}
    assert urls == {"datasheet.pdf", "example.org"}


def test_the_demo_site_has_a_way_to_every_goal() -> None:
    site = demo_site()
    html = "\n".join(p.read_text() for p in DEMO_DIR.glob("*.html"))
    reported = set(re.findall(r'data-goal="([^"]+)"', html))
    events = {g.event for g in site.goals if g.kind == "event"}
    assert reported | {"Outbound Link: Click", "File Download"} == events  # the last two: the beacon's own
    forms = re.findall(r'<form action="([^"]+)" data-goal="[^"]+"(?: data-props="([^"]*)")?', html)
    assert forms
    for action, props in forms:
        assert any(g.matches("pageview", action) for g in site.goals if g.kind == "page"), action
        assert set(filter(None, props.split(","))) <= set(site.prop_keys), props
    # Every page goal's page is served (clean URLs), by the demo server `make run` starts.
    stack = _stack()
    server = stack.serve_demo_site(free_port(), "http://127.0.0.1:9")
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for goal in site.goals:
            if goal.kind == "page":
                path = (goal.page or "").replace("*", "support-engineer")
                r = web.get(base + path, timeout=10)
                assert r.status_code == 200 and "data-domain" in r.text, (goal.name, r.status_code)
        assert web.get(base + "/pricing.html", timeout=10).status_code == 200  # the old names still work
        assert web.get(base + "/nope", timeout=10).status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    layout = (DEMO_DIR / "_layout.html.tmpl").read_text()
    assert "navigator.globalPrivacyControl" in layout and "onecloud_ignore" in layout  # the forms honour objections
