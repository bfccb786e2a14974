"""Filters and the filter editor (issue 15 item 4, issue 18 item 4), in process, against the oracle.

The editor is plain GET forms: these tests submit them as a browser without
JavaScript would (every field of the form, as rendered), so the no-script path
is the tested one; the browser test edits a chip in Chromium.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from collector.schema import Event
from tests.aggregator.oracle import expected
from tests.dashboards.conftest import DEMO, audit_rows, copy_of
from tests.dashboards.inproc import Clock, logged_in
from tests.dashboards.lakes import NOW, known_events

WEEK = (dt.date(2026, 11, 15), dt.date(2026, 11, 21))
KPIS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")


class Forms(HTMLParser):
    """The GET forms of a page: each one's fields as a browser would submit them (no script)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get") == "get":
            self.forms.append((a.get("class", ""), []))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name") and (a.get("type") != "checkbox" or "checked" in a):
            self.forms[-1][1].append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select and self.forms:
            chosen = [v for v, sel in self._options if sel] or [self._options[0][0]]
            self.forms[-1][1].append((self._select, chosen[0]))
            self._select = None


def forms(html: str, css: str) -> list[list[tuple[str, str]]]:
    parser = Forms()
    parser.feed(html)
    return [fields for cls, fields in parser.forms if css in cls]


def kpi(html: str, metric: str) -> float:
    m = re.search(rf'data-metric="{metric}">.*?data-value="([^"]+)"', html, re.S)
    assert m, metric
    return float(m.group(1))


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return known_events()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, known_lake: Path) -> Path:
    return copy_of(known_lake, tmp_path_factory.mktemp("filters"))


@pytest.fixture(scope="module")
def client(data) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with logged_in(data, Clock(NOW)) as c:
        yield c


@pytest.mark.parametrize(
    ("params", "oracle"),
    [
        # Two values of one dimension are alternatives: once silently "Browser is Safari" (issue 18).
        ([("browser", "Chrome"), ("browser", "Safari")], ("is", "visit:browser", ("Chrome", "Safari"))),
        ([("browser", "Chrome"), ("browser", "Safari"), ("browser_op", "is_not")], None),
        ([("page", "DOCS"), ("page_op", "contains")], ("contains", "event:page", ("docs",))),  # ignores case
        ([("source", "Google"), ("source", "Bing"), ("source_op", "is_not")], None),
    ],
)
def test_operators_and_several_values_match_the_oracle(
    client: httpx.Client, events: list[Event], params: list[tuple[str, str]], oracle: tuple | None
) -> None:
    html = client.get(f"/sites/{DEMO}", params=[("period", "7d"), *params]).text
    assert "too small to show" not in html
    key = params[0][0]
    values = tuple(v for k, v in params if k == key)
    op = dict(params).get(f"{key}_op", "is")
    dim = {"browser": "visit:browser", "page": "event:page", "source": "visit:source"}[key]
    rule = oracle or (op, dim, values)
    if op == "is_not":  # the oracle's is_not: the value is none of them
        truth = expected(events, DEMO, *WEEK, KPIS, (), (("is_not", dim, values),))[()]
    else:
        truth = expected(events, DEMO, *WEEK, KPIS, (), (rule,))[()]
    for m in KPIS:
        assert kpi(html, m) == truth[m], (params, m)
    joiner = " nor " if op.endswith("_not") else " or "
    chip = re.search(r'<summary>(<span class="chipkey">.*?)<span class="visually-hidden">', html, re.S)
    assert chip is not None
    label = {"browser": "Browser", "page": "Page", "source": "Source"}[key]
    op_text = {"is": "is", "is_not": "is not", "contains": "contains"}[op]
    assert " ".join(re.sub(r"<[^>]+>", "", chip.group(1)).split()) == f"{label} {op_text} {joiner.join(values)}"


def test_the_add_form_and_a_chip_form_edit_the_url_without_script(client: httpx.Client) -> None:
    page = client.get(f"/sites/{DEMO}", params={"period": "7d"}).text
    (add,) = forms(page, "filteredit")  # no filter yet: only the "add a filter" form
    fields = [(k, v) for k, v in add if k not in ("add", "add_op", "add_value")]
    r = client.get(f"/sites/{DEMO}", params=[*fields, ("add", "browser"), ("add_op", "is"), ("add_value", "Chrome")])
    assert r.status_code == 303 and r.headers["location"] == f"/sites/{DEMO}?period=7d&browser=Chrome"
    page = client.get(r.headers["location"]).text
    chip, add = forms(page, "filteredit")
    # Edit the chip as a user would: "is not", and a second value in the empty field.
    edited = []
    for k, v in chip:
        if k == "browser_op":
            v = "is_not"
        elif k == "browser" and v == "":
            v = "Safari"
        edited.append((k, v))
    page = client.get(f"/sites/{DEMO}", params=edited).text
    assert 'class="chipop">is not</span>' in page and '<span class="chipval">Safari</span>' in page
    chip, _ = forms(page, "filteredit")
    assert [(k, v) for k, v in chip if k.startswith("browser")] == [
        ("browser_op", "is_not"),
        ("browser", "Chrome"),
        ("browser", "Safari"),
        ("browser", ""),
    ]
    # Emptying a value removes it; emptying all removes the filter.
    one = [(k, "" if (k, v) == ("browser", "Chrome") else v) for k, v in chip]
    assert '<span class="chipval">Chrome</span>' not in client.get(f"/sites/{DEMO}", params=one).text
    none = [(k, "" if k == "browser" else v) for k, v in chip]
    assert 'class="chip"' not in client.get(f"/sites/{DEMO}", params=none).text
    # Adding a value with the same operator joins the condition; another operator replaces it.
    r = client.get(f"/sites/{DEMO}", params=[*edited, ("add", "browser"), ("add_op", "is_not"), ("add_value", "Edge")])
    assert [kv for kv in parse_qsl(urlsplit(r.headers["location"]).query) if kv[0].startswith("browser")] == [
        ("browser", "Chrome"),
        ("browser", "Safari"),
        ("browser", "Edge"),
        ("browser_op", "is_not"),
    ]
    r = client.get(
        f"/sites/{DEMO}", params=[*edited, ("add", "browser"), ("add_op", "contains"), ("add_value", "fire")]
    )
    assert parse_qsl(urlsplit(r.headers["location"]).query) == [
        ("period", "7d"),
        ("browser", "fire"),
        ("browser_op", "contains"),
    ]


def test_a_row_click_replaces_that_dimensions_condition_and_keeps_the_others(client: httpx.Client) -> None:
    page = client.get(f"/sites/{DEMO}", params=[("period", "7d"), ("browser", "Chrome"), ("browser", "Safari"),
                                               ("device", "desktop")]).text  # fmt: skip
    link = re.search(r'href="(\?[^"]*)" title="Filter by Chrome"', page)
    assert link is not None
    query = parse_qsl(link.group(1)[1:].replace("&amp;", "&"))
    assert ("browser", "Chrome") in query and ("browser", "Safari") not in query and ("device", "desktop") in query


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ([("browser", "Chrome"), ("browser_op", "sounds_like")], "Unknown operator for the Browser filter"),
        ([("browser", f"B{i}") for i in range(21)], "more than 20 values"),
        ([("page", "x" * 300), ("page_op", "contains")], "longer than 256 characters"),
        ([("browser", f"B{i}") for i in range(16)], "at most 16 in all"),
        ([("period", "custom"), ("from", "2026-11-20"), ("to", "2026-11-10")], "'from' (2026-11-20) is after 'to'"),
        ([("compare", "custom"), ("cmp_from", "2026-11-01")], "'cmp_to' is missing"),
        ([("add", "day_key"), ("add_value", "1")], "Choose what to filter by"),
    ],
)
def test_what_cannot_be_shown_is_a_visible_error(client: httpx.Client, params: list, says: str) -> None:
    r = client.get(f"/sites/{DEMO}", params=params)
    assert r.status_code == 400 and says in html.unescape(r.text), r.text[-800:]
    assert f'href="/sites/{DEMO}">Back to the default view' in r.text


def test_filtered_views_are_audited_with_their_filters(client: httpx.Client, data) -> None:  # type: ignore[no-untyped-def]
    before = audit_rows(data)[-1][0] if audit_rows(data) else 0
    client.get(f"/sites/{DEMO}", params=[("period", "7d"), ("os", "iOS"), ("os", "Android")])
    rows = audit_rows(data, before)
    assert ("view", "period=7d&os=iOS&os=Android") in [(a, d) for _, _, a, d in rows]
