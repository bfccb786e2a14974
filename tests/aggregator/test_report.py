"""Nightly report content: numbers from the query API, k-anonymity, escaping, no external resources.

A real lake in tmp_path: synthetic traffic (aggregator.synth) plus a few
hand-made events with hostile values, written as spool segments and run through
the real nightly steps. Other nightly test modules reuse :func:`build_spool`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest

from aggregator.annotations import Annotation
from aggregator.annotations import read as read_annotations
from aggregator.annotations import write as write_annotations
from aggregator.csvsafe import safe_cell, to_csv
from aggregator.nightly import run_nightly
from aggregator.periods import change
from aggregator.query import Querier
from aggregator.report import Period, build_report
from aggregator.report_files import summary
from aggregator.report_html import fmt_change, render_html
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from collector.schema import Event
from tests.aggregator.oracle import expected

WWW = "www.onecloud.example"
DOCS = "docs.onecloud.example"
DAY = dt.date(2026, 11, 22)  # a Sunday: its run (Monday morning) also writes the ISO week's report
NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
K = 5

HOSTILE_PATH = "/<script>alert(1)</script>"
HOSTILE_SOURCE = '=HYPERLINK("http://evil.example","x")'
HOSTILE_ISP = "@evil <b>ISP</b> & Co"
RARE_PAGE = "/k-minus-one-only"  # K-1 visitors: must never appear by name
RARE_BROWSER = "RareBrowser"


def special_events(template: Event, day: dt.date) -> list[Event]:
    """K visitors with hostile values (shown by name, escaped) and K-1 with a rare page and browser."""
    base = int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp())
    out = []
    for i in range(K):
        out.append(
            dataclasses.replace(
                template,
                site=WWW,
                ts=base + i * 60,
                name="pageview",
                path=HOSTILE_PATH,
                referrer_source=HOSTILE_SOURCE,
                referrer_host="evil.example",
                referrer_path="/",
                isp=HOSTILE_ISP,
                asn=64512,
                day_key=(1 << 40) + i,
                engaged_ms=None,
                scroll_depth=None,
            )
        )
    for i in range(K - 1):
        out.append(
            dataclasses.replace(
                template,
                site=WWW,
                ts=base + 3600 + i * 60,
                name="pageview",
                path=RARE_PAGE,
                browser=RARE_BROWSER,
                day_key=(1 << 41) + i,
                engaged_ms=None,
                scroll_depth=None,
            )
        )
    return out


def all_events() -> list[Event]:
    events = generate(Traffic(dt.date(2026, 11, 14), 9, {WWW: 30, DOCS: 6}, seed=7))
    return events + special_events(events[0], DAY)


def build_spool(settings: Settings) -> list[Event]:
    events = all_events()
    write_segments(events, settings.sealed_dir, per_segment=500)
    return events


@dataclasses.dataclass
class Built:
    settings: Settings
    events: list[Event]
    rc: int
    output: str

    def files(self, site: str = WWW, period: str = DAY.isoformat()) -> dict[str, bytes]:
        d = self.settings.reports_dir / site / period
        return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    settings = Settings(data_dir=tmp_path_factory.mktemp("report") / "data", duckdb_threads=2, k_anonymity=K)
    events = build_spool(settings)
    out = io.StringIO()
    rc = run_nightly(settings, DAY, NOW, out=out, err=out)
    return Built(settings, events, rc, out.getvalue())


@pytest.mark.slow
def test_reports_are_written_per_site_and_period(built: Built) -> None:
    assert built.rc == 0, built.output
    for site in (WWW, DOCS):
        for period in (DAY.isoformat(), "week-2026-W47"):
            names = set(built.files(site, period))
            assert {"index.html", "summary.json", "pages.csv", "sources.csv", "channels.csv", "browsers.csv"} <= names
            assert {"os.csv", "devices.csv", "isps.csv"} <= names
    assert "hourly.csv" in built.files() and "daily.csv" in built.files(WWW, "week-2026-W47")


def test_kpis_match_ground_truth_and_comparisons(built: Built) -> None:
    summary = json.loads(built.files()["summary.json"])
    assert summary["schema_version"] == 2 and summary["site"] == WWW and summary["k_anonymity"] == K
    metrics = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page")
    for day, key in ((DAY, None), (DAY - dt.timedelta(days=1), "previous"), (DAY - dt.timedelta(days=7), "week_ago")):
        want = expected(built.events, WWW, day, day, metrics)[()]
        for m in metrics:
            got = summary["kpis"][m]["value"] if key is None else summary["kpis"][m]["previous"][key]
            assert got == want[m], (day, m)
    # Changes are the query layer's (periods.change, as on the dashboards): whole percent, points for rates.
    for m in metrics:
        kpi = summary["kpis"][m]
        for key in ("previous", "week_ago"):
            assert kpi["change"][key] == change(m, kpi["value"], kpi["previous"][key], 1), (m, key)
    v = summary["kpis"]["visitors"]
    assert isinstance(v["change"]["previous"], int)
    assert summary["comparisons"]["previous"]["start"] == "2026-11-21"
    assert (
        summary["comparisons"]["week_ago"]
        == {
            "label": "vs same weekday a week earlier",
            "name": "2026-11-15",
            "start": "2026-11-15",
            "end": "2026-11-15",
            "days": 1,
            "visits": summary["comparisons"]["week_ago"]["visits"],
        }
        and summary["comparisons"]["week_ago"]["visits"] > 0
    )
    assert "counted per UTC day" in summary["notes"]["visitors"]
    week = json.loads(built.files(WWW, "week-2026-W47")["summary.json"])
    assert week["period"] == {"kind": "week", "name": "week-2026-W47", "start": "2026-11-16", "end": "2026-11-22"}
    want_week = expected(built.events, WWW, dt.date(2026, 11, 16), DAY, ("visitors",))[()]["visitors"]
    assert week["kpis"]["visitors"]["value"] == want_week  # the sum of daily visitors
    assert [p["label"] for p in week["series"]] == [f"11-{d}" for d in range(16, 23)]


def test_breakdowns_are_k_anonymous_with_other_rows_explained(built: Built) -> None:
    files = built.files()
    for name, content in files.items():
        text = content.decode()
        assert RARE_PAGE not in text and RARE_BROWSER not in text, name
    summary = json.loads(files["summary.json"])
    pages = summary["breakdowns"]["pages"]
    values = [r["value"] for r in pages["rows"]]
    assert values[-1] == "(other)" and pages["folded_rows"] >= 1
    assert all(r["visitors"] >= K for r in pages["rows"])
    truth = expected(built.events, WWW, DAY, DAY, ("visitors",), dimensions=("event:page",))
    assert truth[(RARE_PAGE,)]["visitors"] == K - 1  # it is in the lake, just not shown
    assert truth[(HOSTILE_PATH,)]["visitors"] == K and HOSTILE_PATH in values
    html = files["index.html"].decode()
    assert "(other)" in html and f"fewer than {K} people" in html
    assert "(other)" in files["pages.csv"].decode()


def test_html_is_self_contained_and_escapes_traffic_values(built: Built) -> None:
    html = built.files()["index.html"].decode()
    assert "<script" not in html.lower()  # the hostile path is data, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@evil &lt;b&gt;ISP&lt;/b&gt; &amp; Co" in html
    for external in ("src=", "<link", "url(", "@import", "<iframe", "<img", "<object"):
        assert external not in html.lower(), external
    # The one link is the attribution; a URL inside traffic values stays escaped text.
    assert re.findall(r"(?:href|xlink:href|action)\s*=\s*\"([^\"]*)\"", html) == ["https://db-ip.com"]
    assert "=HYPERLINK(&quot;http://evil.example&quot;" in html
    assert 'ISP data: <a href="https://db-ip.com">DB-IP.com</a>, RouteViews, NRO (CC BY 4.0)' in html
    assert "@media print" in html and "<svg" in html
    assert "Notable changes" in html and "Time on page" in html


def test_csv_cells_are_formula_safe(built: Built) -> None:
    sources = built.files()["sources.csv"].decode()
    assert "'=HYPERLINK(" in sources and "\r\n=HYPERLINK" not in sources
    assert "'@evil <b>ISP</b> & Co" in built.files()["isps.csv"].decode()
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("/docs") == "/docs" and safe_cell(12) == "12"
    assert safe_cell(-0.5) == "-0.5"  # our own numbers (a negative change) stay numbers
    assert to_csv(["a"], [["=x"]]) == "a\r\n'=x\r\n"


def test_notable_changes_compare_rows_shown_in_both_periods(built: Built) -> None:
    summary = json.loads(built.files()["summary.json"])
    movers = summary["notable_changes"]
    assert movers, "synthetic traffic changes from day to day"
    deltas = [abs(m["visitors"] - m["previous"]) for m in movers]
    assert deltas == sorted(deltas, reverse=True)
    for m in movers:
        assert m["value"] != "(other)" and min(m["visitors"], m["previous"]) >= K


def test_periods() -> None:
    assert Period.iso_week(dt.date(2026, 11, 22)).name == "week-2026-W47"
    assert Period.iso_week(dt.date(2027, 1, 1)).name == "week-2026-W53"
    assert Period.month(dt.date(2026, 2, 10)) == Period("month", dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert Period.month(dt.date(2026, 3, 31)).days == 31
    assert [k for k, _, _ in Period.day(DAY).comparisons()] == ["previous", "week_ago"]


def report_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_comparison_period_without_visits_has_no_change_in_words(built: Built) -> None:
    # 2026-11-14 is the lake's first day: the day before has no visits. The old report showed the bounce rate's
    # change as "+N pp" (its value minus 0) while the other KPIs said "n/a".
    first = dt.date(2026, 11, 14)
    querier = Querier(built.settings)
    try:
        report = build_report(querier, WWW, Period.day(first), NOW)
    finally:
        querier.close()
    previous = next(c for c in report.comparisons if c.key == "previous")
    assert previous.visits == 0 and (previous.start, previous.end) == (first - dt.timedelta(days=1),) * 2
    for kpi in report.kpis:
        assert kpi.change["previous"] is None, kpi.metric
        assert fmt_change(kpi.metric, kpi.change["previous"], previous)[0] == "no data to compare"
    html = render_html(report)
    assert html.count("no data to compare") == 2 * len(report.kpis) and "pp vs previous day" not in html
    assert "2026-11-13 (1 day, no visits)" in html


def test_a_month_is_compared_with_the_same_number_of_days_before_it(built: Built) -> None:
    # One rule on both surfaces (the dashboards use periods.comparison_range too): 30 days of November
    # against the 30 days before, stated with its dates and length.
    querier = Querier(built.settings)
    try:
        # Run on the 1st for the month just ended (a month still running is compared "so far", as many days).
        report = build_report(querier, WWW, Period.month(DAY), dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC))
    finally:
        querier.close()
    (c,) = report.comparisons
    assert (c.start, c.end, c.days) == (dt.date(2026, 10, 2), dt.date(2026, 10, 31), 30)
    assert c.label == "vs the 30 days before"
    html = render_html(report)
    assert "vs the 30 days before: 2026-10-02 to 2026-10-31 (30 days, no visits)" in html
    assert "same number of days just before it" in html


def test_the_charts_have_whole_number_ticks_a_comparison_line_and_no_shared_axis(built: Built) -> None:
    html = built.files()["index.html"].decode()
    # Visitors and pageviews on their own axes (the old chart drew bars and a line on one scale, two labels).
    assert html.count('class="chart chart-wide"') == 2 and html.count('class="chart chart-compact"') == 2
    assert 'class="prevline"' in html and "vs previous day" in html
    ticks = [
        float(t.replace(",", "")) for t in re.findall(r'<text class="axis" [^>]*text-anchor="end"[^>]*>([^<]+)<', html)
    ]
    assert ticks and all(t == int(t) for t in ticks)
    # Every hour has its own hover column with the numbers of both periods.
    titles = re.findall(r'<rect class="hit"[^>]*><title>([^<]+)</title>', html)
    assert len(titles) == 2 * 2 * 24 and all("vs" not in t or "previous day" in t for t in titles)
    assert "2026-11-22 12:00:00: Visitors" in " ".join(titles)


def test_annotations_written_by_the_dashboards_are_listed_and_drawn(built: Built, tmp_path: Path) -> None:
    settings = dataclasses.replace(built.settings, data_dir=built.settings.data_dir)
    write_annotations(
        settings.data_dir,
        [
            Annotation(WWW, dt.date(2026, 11, 18), "Campaign <b>launch</b>"),
            Annotation(WWW, DAY, "Newsletter"),
            Annotation(DOCS, DAY, "docs only"),
            Annotation(WWW, dt.date(2026, 10, 1), "outside the period"),
        ],
    )
    try:
        querier = Querier(settings)
        try:
            week = build_report(
                querier, WWW, Period.iso_week(DAY), NOW, annotations=read_annotations(settings.data_dir)
            )
        finally:
            querier.close()
        html = render_html(week)
        assert "<h2>Annotations</h2>" in html and "Campaign &lt;b&gt;launch&lt;/b&gt;" in html
        assert "Newsletter" in html and "docs only" not in html and "outside the period" not in html
        assert html.count('class="marker"') == 2 * 2 * 2  # two notes, two charts, two sizes
        assert [a["text"] for a in summary(week)["annotations"]] == ["Campaign <b>launch</b>", "Newsletter"]
    finally:
        (settings.data_dir / "annotations.json").unlink()
