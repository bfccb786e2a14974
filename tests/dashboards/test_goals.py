"""Goals, properties and funnels in the dashboards, and conversions in the nightly report (issue 16), in process.

One lake with known conversions (tests/dashboards/goallake.py) through the
real ingest; the expected numbers are counted from its events in plain Python.
K = 5 (the default): the goals "Rare" (2 people) and "Newsletter" (3) are
never shown by name, their 5 people together are the Goals panel's (other).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from aggregator.periods import change
from aggregator.query import Querier
from aggregator.report import Period, build_report
from aggregator.report_files import write_report
from aggregator.settings import Settings as AggregatorSettings
from collector.schema import Event
from tests.aggregator.oracle import expected
from tests.dashboards.conftest import DEMO, audit_rows
from tests.dashboards.goallake import (
    BEFORE,
    GOALS,
    NO_GOALS,
    WEEK,
    converted,
    goal_events,
    goal_name,
    make_goal_lake,
)
from tests.dashboards.inproc import Clock, logged_in
from tests.dashboards.lakes import NOW, K

RANGE = [("period", "custom"), ("from", WEEK[0].isoformat()), ("to", WEEK[1].isoformat())]


class Rows(HTMLParser):
    """The rows of one panel (``<section id="panel-...">``): label, filter link, {metric: data-value}."""

    def __init__(self, panel: str) -> None:
        super().__init__()
        self.panel, self.depth, self.rows = f"panel-{panel}", 0, []
        self._row: dict[str, object] | None = None
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and a.get("id") == self.panel:
            self.depth = 1
        elif tag == "section" and self.depth:
            self.depth += 1
        if not self.depth:
            return
        if tag == "tr" and self._row is None:
            self._row = {"label": "", "href": None, "values": {}}
        elif tag == "td" and self._row is not None and "label" in a.get("class", ""):
            self._in_label = True
        elif tag == "a" and self._in_label and self._row is not None:
            self._row["href"] = unescape(a["href"])
        elif tag == "td" and self._row is not None and "data-metric" in a:
            self._row["values"][a["data-metric"]] = a["data-value"]  # type: ignore[index]

    def handle_data(self, data: str) -> None:
        if self._in_label and self._row is not None:
            self._row["label"] = str(self._row["label"]) + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_label = False
        elif tag == "tr" and self._row is not None:
            if self._row["values"]:
                self.rows.append(self._row)
            self._row = None
        elif tag == "section" and self.depth:
            self.depth -= 1


def panel_rows(html: str, panel: str) -> dict[str, dict[str, object]]:
    parser = Rows(panel)
    parser.feed(html)
    return {str(r["label"]).strip(): r for r in parser.rows}


def kpis(html: str) -> dict[str, tuple[str, float]]:
    """KPI card label → (metric, exact value)."""
    cards = re.findall(
        r'data-metric="([a-z_]+)">.*?<span class="kpilabel">([^<]+)</span>\s*<span class="kpivalue" '
        r'data-value="([^"]+)"',
        html,
        re.S,
    )
    return {label: (metric, float(value)) for metric, label, value in cards}


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return goal_events()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, events: list[Event]) -> Path:
    return make_goal_lake(tmp_path_factory.mktemp("goals") / "data", events)


@pytest.fixture(scope="module")
def client(data: Path) -> Iterator[httpx.Client]:
    with logged_in(data, Clock(NOW)) as c:
        yield c


def total_visitors(events: list[Event], span: tuple[dt.date, dt.date] = WEEK) -> int:
    return int(expected(events, DEMO, *span, ("visitors",), (), ())[()]["visitors"])


def cr(visitors: int, total: int) -> float:
    return round(100 * visitors / total, 2)


@pytest.mark.slow
def test_the_goals_panel_counts_each_goal_against_the_oracle(client: httpx.Client, events: list[Event]) -> None:
    html = client.get(f"/sites/{DEMO}", params=RANGE).text
    rows = panel_rows(html, "goals")
    total = total_visitors(events)
    want = {}
    for goal in GOALS:
        visitors, conversions = converted(events, goal, WEEK)
        if visitors >= K:
            want[goal_name(goal)] = {"visitors": str(visitors), "events": str(conversions),
                                     "conversion_rate": str(cr(visitors, total))}  # fmt: skip
    assert set(want) == {"Signup", "Signup: pro", "Visit /signup", "Visit /signup/thanks"}
    assert {name: r["values"] for name, r in rows.items() if name != "(other)"} == want
    # Rare (2 people) and Newsletter (3) are never rows (their names are configuration: the filter editor
    # suggests them); their 5 people are (other), exactly, and not a link.
    section = html.split('id="panel-goals"')[1].split("</section>")[0]
    assert "Rare" not in section and "Newsletter" not in section
    assert rows["(other)"]["values"] == {"visitors": "5", "events": "5", "conversion_rate": str(cr(5, total))}
    assert rows["(other)"]["href"] is None
    assert re.search(r'<th scope="col" class="num" title="Unique conversions">Uniques</th>', html)


def test_a_click_on_a_goal_filters_the_whole_overview(client: httpx.Client, events: list[Event], data: Path) -> None:
    html = client.get(f"/sites/{DEMO}", params=RANGE).text
    href = str(panel_rows(html, "goals")["Signup"]["href"])
    assert ("goal", "Signup") in parse_qsl(urlsplit(href).query)
    before = audit_rows(data)[-1][0]
    page = client.get(f"/sites/{DEMO}{href}").text
    visitors, conversions = converted(events, {"event": "Signup"}, WEEK)
    previous, _ = converted(events, {"event": "Signup"}, BEFORE)
    total, total_before = total_visitors(events), total_visitors(events, BEFORE)
    cards = kpis(page)
    assert cards == {
        "Unique conversions": ("visitors", visitors),
        "Total conversions": ("events", conversions),
        "Conversion rate": ("conversion_rate", cr(visitors, total)),
    }
    # The change is the query layer's: percent for conversions, percentage points for the rate.
    rate_change = change("conversion_rate", cr(visitors, total), cr(previous, total_before))
    assert rate_change is not None and f"+{rate_change:g} pp" in page
    assert f"+{change('visitors', visitors, previous)}%" in page
    # The chip says it and removes it; every panel counts conversions; the Goals panel has only this goal.
    assert '<span class="chipkey">Goal</span> <span class="chipop">is</span>' in page
    assert '<span class="chipval">Signup</span>' in page
    removed = re.search(r'class="chipx" href="([^"]+)" aria-label="Remove filter Goal is Signup"', page)
    assert removed is not None and "goal=" not in unescape(removed.group(1))
    assert list(panel_rows(page, "goals")) == ["Signup"]
    pages = panel_rows(page, "pages")
    assert pages["/signup"]["values"] == {"visitors": str(visitors), "group_conversion_rate": str(cr(visitors, 128))}
    assert "Unique conversions by day" in page
    # The view is its URL: another browser (or a bookmark) gets the same numbers; the view is audited.
    with logged_in(data, Clock(NOW)) as other:
        assert kpis(other.get(f"/sites/{DEMO}{href}").text) == cards
    assert any(
        action == "view" and detail and "goal=Signup" in detail for _, _, action, detail in audit_rows(data, before)
    )


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ([("goal", "Nope")], "The goal `Nope` is not configured for this site"),
        ([("goal", "Signup"), ("goal_op", "is_not")], "Unknown operator for the Goal filter (one of: is, contains)"),
        ([("prop.pl an", "x")], "No such property key can be filtered by: 'pl an'"),
    ],
)
def test_goal_and_property_filters_that_cannot_be_shown_say_why(
    client: httpx.Client, params: list[tuple[str, str]], says: str
) -> None:
    r = client.get(f"/sites/{DEMO}", params=[*RANGE, *params])
    assert r.status_code == 400 and says in unescape(r.text), r.text[-600:]


def test_the_properties_panel_breaks_down_each_key(client: httpx.Client, events: list[Event]) -> None:
    html = client.get(f"/sites/{DEMO}", params=RANGE).text
    assert re.search(r'<option value="plan" selected>plan</option><option value="url">url</option>', html)
    rows = panel_rows(html, "props")
    pro = converted(events, {"event": "Signup", "props": {"plan": "pro"}}, WEEK)
    free = converted(events, {"event": "Signup", "props": {"plan": "free"}}, WEEK)
    assert rows["pro"]["values"] == {"visitors": str(pro[0]), "events": str(pro[1])}
    assert rows["free"]["values"] == {"visitors": str(free[0]), "events": str(free[1])}
    assert "(none)" in rows  # every event without the key (page views above all)
    # With a goal filter, the goal's events only, with their conversion rate (Plausible's breakdown).
    total = total_visitors(events)
    goal = panel_rows(client.get(f"/sites/{DEMO}", params=[*RANGE, ("goal", "Signup")]).text, "props")
    assert {k: r["values"] for k, r in goal.items()} == {
        "pro": {"visitors": str(pro[0]), "events": str(pro[1]), "conversion_rate": str(cr(pro[0], total))},
        "free": {"visitors": str(free[0]), "events": str(free[1]), "conversion_rate": str(cr(free[0], total))},
    }
    # A row click filters by the property; the chip names it; the key picker's choice is kept in the URL.
    href = str(rows["pro"]["href"])
    assert ("prop.plan", "pro") in parse_qsl(urlsplit(href).query)
    page = client.get(f"/sites/{DEMO}{href}").text
    assert '<span class="chipkey">Property plan</span>' in page and kpis(page)["Visitors"] == ("visitors", pro[0])
    other_key = client.get(f"/sites/{DEMO}", params=[*RANGE, ("tab_props", "url")]).text
    assert list(panel_rows(other_key, "props")) == ["(none)"]
    assert '<option value="url" selected>url</option>' in other_key
    # The property filter's own operator (prop_op.plan): "contains" ignores case.
    page = client.get(f"/sites/{DEMO}", params=[*RANGE, ("prop.plan", "PR"), ("prop_op.plan", "contains")]).text
    assert kpis(page)["Visitors"] == ("visitors", pro[0])


def test_the_funnel_page_shows_steps_drop_off_and_hidden_steps(client: httpx.Client, events: list[Event]) -> None:
    overview = client.get(f"/sites/{DEMO}", params=RANGE).text
    link = re.search(r'<a href="(/sites/[^"]+/funnels/Signing%20up\?[^"]*)">Signing up</a>', overview)
    assert link is not None
    page = client.get(unescape(link.group(1))).text
    assert "Custom range: 2026-11-16 – 2026-11-22" in page
    steps = dict(re.findall(r'<tr data-step="(\d)">.*?data-metric="visitors" data-value="(\d*)"', page, re.S))
    signup, _ = converted(events, {"event": "Signup"}, WEEK)
    thanks, _ = converted(events, {"page": "/signup/thanks"}, WEEK)
    entered, _ = converted(events, {"page": "/signup"}, WEEK)
    assert steps == {"1": str(entered), "2": str(signup), "3": str(thanks)}  # every visitor goes in order
    cells = dict(re.findall(r'data-metric="(\w+)" data-value="([^"]*)"', page.split('data-step="3"')[1]))
    rates = {"conversion_rate": str(cr(thanks, entered)), "conversion_rate_step": str(cr(thanks, signup))}
    assert cells == {"visitors": str(thanks), "dropoff": str(signup - thanks), "median_seconds": "30", **rates}
    assert '<svg class="funnel"' in page and "hidden-note" not in page
    # Two people sent "Rare" after /signup: the step is "fewer than 5 visitors", never a number.
    rare = client.get(f"/sites/{DEMO}/funnels/Rare%20path", params=RANGE).text
    assert re.search(r'class="hiddenstep" data-step="2">\s*<th scope="row">2. Rare</th>\s*<td class="num" '
                     r'data-metric="visitors" data-value="">fewer than 5 visitors</td>', rare)  # fmt: skip
    assert 'id="hidden-note"' in rare and 'class="fstep hidden"' in rare and ">fewer than 5</text>" in rare
    assert f'data-value="{entered}"' in rare


def test_the_funnel_page_respects_the_filters(client: httpx.Client, events: list[Event]) -> None:
    signups = [e for e in events if e.name == "Signup" and WEEK[0] <= dt.datetime.fromtimestamp(e.ts, dt.UTC).date()]
    browser = max({e.browser for e in signups}, key=lambda b: sum(e.browser == b for e in signups))
    mine = [e for e in events if e.browser == browser]
    page = client.get(f"/sites/{DEMO}/funnels/Signing%20up", params=[*RANGE, ("browser", browser)]).text
    assert f'<span class="chipval">{browser}</span>' in page
    steps = [int(v) for v in re.findall(r'data-metric="visitors" data-value="(\d+)"', page)]
    names = ({"page": "/signup"}, {"event": "Signup"}, {"page": "/signup/thanks"})
    assert steps == [converted(mine, g, WEEK)[0] for g in names]
    assert steps[0] < converted(events, {"page": "/signup"}, WEEK)[0]
    # An unknown funnel is a 404 that says so; the list links each funnel with the view's state.
    r = client.get(f"/sites/{DEMO}/funnels/Nope")
    assert r.status_code == 404 and "no funnel of that name" in r.text
    listing = client.get(f"/sites/{DEMO}/funnels", params=[*RANGE, ("browser", browser)]).text
    assert f"/funnels/Rare%20path?period=custom&amp;from=2026-11-16&amp;to=2026-11-22&amp;browser={browser}" in listing


def test_a_site_without_goals_or_properties_says_how_to_define_them(client: httpx.Client) -> None:
    html = client.get(f"/sites/{NO_GOALS}").text
    assert "No goals are defined for this site" in html
    assert f'<a href="/admin/siteconfig#site-{NO_GOALS}">Define goals in the site configuration</a>' in html
    assert "This site keeps no custom properties" in html and "No funnels are defined" in html
    # No Goal filter to offer where there are no goals.
    assert (
        '<option value="goal">' not in html
        and '<option value="goal">Goal</option>' in client.get(f"/sites/{DEMO}").text
    )


def test_the_goals_panel_exports_as_csv(client: httpx.Client, events: list[Event]) -> None:
    r = client.get(f"/sites/{DEMO}/export/goals.csv", params=RANGE)
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["Goal", "visitors", "events", "conversion_rate"]
    visitors, conversions = converted(events, {"event": "Signup"}, WEEK)
    assert ["Signup", str(visitors), str(conversions), str(cr(visitors, total_visitors(events)))] in rows


def test_the_nightly_report_has_the_same_conversions(client: httpx.Client, events: list[Event], data: Path) -> None:
    settings = AggregatorSettings(data_dir=data, duckdb_threads=2)
    report = build_report(Querier(settings), DEMO, Period.iso_week(WEEK[0]), NOW)
    assert report.goals is not None
    panel = panel_rows(client.get(f"/sites/{DEMO}", params=RANGE).text, "goals")
    got = {r.name: tuple(str(v) for v in r.values) for r in report.goals.rows}
    assert got == {name: tuple(str(row["values"][m]) for m in ("visitors", "events", "conversion_rate"))  # type: ignore[index]
                   for name, row in panel.items()}  # fmt: skip
    directory, _ = write_report(settings.reports_dir, report)
    summary = json.loads((directory / "summary.json").read_text())
    signup = next(r for r in summary["goals"]["rows"] if r["goal"] == "Signup")
    visitors, _ = converted(events, {"event": "Signup"}, WEEK)
    previous, previous_events = converted(events, {"event": "Signup"}, BEFORE)
    assert signup["previous"]["previous"] == {
        "visitors": previous, "events": previous_events,
        "conversion_rate": cr(previous, total_visitors(events, BEFORE)),
    }  # fmt: skip
    assert signup["change"]["previous"]["visitors"] == change("visitors", visitors, previous)
    assert summary["goals"]["folded_rows"] == 2 and summary["goals"]["goals_configured"] == len(GOALS)
    goals_csv = list(csv.reader(io.StringIO((directory / "goals.csv").read_text())))
    assert goals_csv[0][:4] == ["goal", "visitors", "events", "conversion_rate"]
    assert [r[0] for r in goals_csv[1:]] == [r.name for r in report.goals.rows]
    funnels = list(csv.DictReader(io.StringIO((directory / "funnels.csv").read_text())))
    rare = [r for r in funnels if r["funnel"] == "Rare path"]
    assert [(r["goal"], r["shown"], r["visitors"]) for r in rare] == [
        ("Visit /signup", "true", str(converted(events, {"page": "/signup"}, WEEK)[0])),
        ("Rare", "false", ""),
    ]
    html = (directory / "index.html").read_text()
    assert "<h2>Conversions</h2>" in html and "<h2>Funnels</h2>" in html and "fewer than 5 visitors" in html
    assert "Rare</td><td>" not in html and "Newsletter" not in html
