"""Every surface tells the same numbers: Stats API, `aggregator query`, dashboard pages and CSVs, nightly report.

Issue 18 read a ground-truth run back from every surface and found numbers that
disagreed; this test keeps them in step. Known traffic (three UTC days of
synthetic visits plus edge cases: gaps of 1800 and 1801 s, a visit across
midnight, engaged time over the 30-minute clip, bounces at 9,999 and 10,000 ms
engaged) is ingested for real; every surface is read back and compared with the
plain-Python oracle (tests/aggregator/oracle.py) under the k-anonymity rule.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import html
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aggregator.fmt import change as shown_change
from aggregator.metrics import KPI_LABELS
from aggregator.nightly import run_nightly
from aggregator.periods import change
from aggregator.report import BREAKDOWNS
from aggregator.settings import Settings as AggregatorSettings
from aggregator.synth import Traffic, generate
from collector.schema import MAX_ENGAGED_MS, Event
from dashboards.apikeys import ApiKeys
from dashboards.panels import PANELS
from dashboards.store import Store
from tests.aggregator.oracle import expected, folded, people
from tests.conftest import ROOT
from tests.dashboards.conftest import DEMO, base_env
from tests.dashboards.inproc import Clock, logged_in
from tests.dashboards.lakes import make_lake
from tests.events import make_event

K = 5
DAYS = (dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22))  # Friday to Sunday
START, END = DAYS[0], DAYS[-1]
NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page",
           "scroll_depth", "events")  # fmt: skip
DIMS = ("event:page", "event:name", "visit:entry_page", "visit:exit_page", "visit:source", "visit:channel",
        "visit:browser", "visit:os", "visit:device", "visit:isp", "visit:utm_source")  # fmt: skip


def ts(day: dt.date, h: int, m: int = 0, s: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=dt.UTC).timestamp())


def edge_cases() -> list[Event]:
    d = DAYS[1]
    out = []
    for i in range(6):  # six people, so the rows they make are shown
        key = 7_000_000 + i
        base = ts(d, 9, i)
        out += [
            make_event(site=DEMO, ts=base, path="/edge", day_key=key),
            make_event(site=DEMO, ts=base + 1800, path="/edge/a", day_key=key),  # same visit (gap = 30 min)
            make_event(site=DEMO, ts=base + 1800 + 1801, path="/edge/b", day_key=key),  # a new visit
            make_event(
                site=DEMO,
                ts=base + 3605,
                name="engagement",
                path="/edge/b",
                day_key=key,
                engaged_ms=MAX_ENGAGED_MS + 60_000,
                scroll_depth=40 + i,
            ),  # fmt: skip
        ]
        bounce = 9_999 if i % 2 else 10_000  # one pageview and under 10 s engaged: a bounce
        out += [
            make_event(site=DEMO, ts=ts(d, 14, i), path="/bounce", day_key=key + 100),
            make_event(
                site=DEMO, ts=ts(d, 14, i, 5), name="engagement", path="/bounce", day_key=key + 100, engaged_ms=bounce
            ),  # fmt: skip
        ]
        # A page only one person read, six times over: each folds into (other), which has six people.
        out.append(make_event(site=DEMO, ts=ts(d, 16, i), path=f"/rare/{i}", day_key=key + 400))
        out += [  # across midnight: 23:50 and 00:10 are two days, so two visitor-days
            make_event(site=DEMO, ts=ts(DAYS[0], 23, 50, i), path="/late", day_key=key + 200),
            make_event(site=DEMO, ts=ts(DAYS[1], 0, 10, i), path="/late", day_key=key + 300),
        ]
    return out


@dataclasses.dataclass
class World:
    data: Path
    events: list[Event]
    client: httpx.Client
    key: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    events = generate(Traffic(START, 3, {DEMO: 190}, seed=18)) + edge_cases()
    events = [e for e in events if START <= dt.datetime.fromtimestamp(e.ts, dt.UTC).date() <= END]
    data = make_lake(tmp_path_factory.mktemp("surfaces") / "data", events)
    _, key = ApiKeys(Store(data / "dashboards.sqlite3")).create("surfaces", "test")
    settings = AggregatorSettings(data_dir=data, duckdb_threads=2, k_anonymity=K, report_sites=(DEMO,))
    out = io.StringIO()
    assert run_nightly(settings, END, NOW, out=out, err=out, mail=False) == 0, out.getvalue()
    with logged_in(data, Clock(NOW)) as client:
        yield World(data, events, client, key)


def api(w: World, body: dict[str, object]) -> dict[str, object]:
    r = w.client.post("/api/v2/query", json={"site_id": DEMO, **body}, headers={"authorization": f"Bearer {w.key}"})
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


def rows_of(answer: dict) -> dict[tuple[str, ...], list[float]]:  # type: ignore[type-arg]
    return {tuple(r["dimensions"]): r["metrics"] for r in answer["results"]}


def truth_rows(w: World, metrics: tuple[str, ...], dim: str, start: dt.date = START, end: dt.date = END) -> dict:  # type: ignore[type-arg]
    shown, other = folded(w.events, DEMO, start, end, metrics, dim, K)
    out = {key: [row[m] for m in metrics] for key, row in shown.items()}
    if other is not None:
        out[("(other)",)] = [other[m] for m in metrics]
    return out


@pytest.mark.slow
def test_totals_agree_on_the_api_the_cli_the_dashboard_and_the_report(world: World) -> None:
    truth = expected(world.events, DEMO, START, END, METRICS)[()]
    rng = [START.isoformat(), END.isoformat()]
    assert api(world, {"metrics": list(METRICS), "date_range": rng})["results"][0]["metrics"] == [  # type: ignore[index]
        truth[m] for m in METRICS
    ]
    env = base_env(world.data)
    query = json.dumps({"site_id": DEMO, "metrics": list(METRICS), "date_range": rng})
    argv = [sys.executable, "-m", "aggregator", "query", "--json", query]
    env |= {"ANALYTICS_K_ANONYMITY": str(K)}
    cli = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout)["results"][0]["metrics"] == [truth[m] for m in METRICS]
    page = world.client.get(f"/sites/{DEMO}", params={"period": "custom", "from": rng[0], "to": rng[1]}).text
    for m in ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page"):
        value = re.search(rf'data-metric="{m}">.*?data-value="([^"]+)"', page, re.S)
        assert value is not None and float(value.group(1)) == truth[m], m
    week = json.loads((world.data / "reports" / DEMO / "week-2026-W47" / "summary.json").read_text())
    for m in ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page"):
        assert week["kpis"][m]["value"] == truth[m], m  # the week holds only these three days


@pytest.mark.parametrize("dim", DIMS)
def test_breakdown_rows_and_other_agree_with_the_oracle_under_k(world: World, dim: str) -> None:
    metrics = ("visitors", "visits", "pageviews", "events") if dim.startswith("event:") else (
        "visitors", "visits", "bounce_rate", "visit_duration")  # fmt: skip
    if dim in ("visit:entry_page", "visit:exit_page"):
        metrics = ("visitors", "visits", "bounce_rate")
    answer = api(world, {"metrics": list(metrics), "date_range": [START.isoformat(), END.isoformat()],
                         "dimensions": [dim]})  # fmt: skip
    truth = truth_rows(world, metrics, dim)
    assert rows_of(answer) == {k: [float(x) if isinstance(x, float) else x for x in v] for k, v in truth.items()}
    # folded_rows counts rows that had people and were not shown (never an engagement row with none).
    candidates = {
        k for k, r in expected(world.events, DEMO, START, END, ("visitors",), (dim,)).items() if r["_visitors"]
    }
    assert answer["meta"]["folded_rows"] == len(candidates) - len([k for k in truth if k != ("(other)",)])  # type: ignore[index]


def test_every_dashboard_csv_agrees_with_the_oracle(world: World) -> None:
    checked = 0
    view = {"period": "custom", "from": START.isoformat(), "to": END.isoformat()}
    for panel in PANELS:
        for tab in panel.tabs:
            r = world.client.get(f"/sites/{DEMO}/export/{panel.key}.csv", params={**view, f"tab_{panel.key}": tab.key})
            assert r.status_code == 200
            lines = list(csv.reader(io.StringIO(r.text)))
            n = len(tab.dimensions)
            metrics = tuple(lines[0][n:])
            got = {tuple(row[:n]): [float(x) for x in row[n:]] for row in lines[1:]}
            if len(tab.dimensions) == 1:
                truth = truth_rows(world, metrics, tab.dimensions[0])
                assert got == {k: [float(x) for x in v] for k, v in truth.items()}, tab.key
            else:  # two dimensions: every named row is an oracle row of at least K people, with its numbers
                rows = expected(world.events, DEMO, START, END, metrics, tab.dimensions)
                for key, values in got.items():
                    if key[0] != "(other)":
                        assert people(rows[key]) >= K and values == [float(rows[key][m]) for m in metrics], key
            checked += 1
    assert checked == sum(len(p.tabs) for p in PANELS)


def test_the_dashboard_panels_are_the_top_ten_and_the_exact_other(world: World) -> None:
    view = {"period": "custom", "from": START.isoformat(), "to": END.isoformat()}
    page = world.client.get(f"/sites/{DEMO}", params=view).text
    section = page.split('id="panel-pages"')[1].split("</section>")[0]
    shown = re.findall(r'<td class="label">.*?(?:title="Filter by [^"]*">|class="other"[^>]*>)([^<]+)<.*?'
                       r'data-value="(\d+)"', section, re.S)  # fmt: skip
    truth = truth_rows(world, ("visitors", "pageviews", "time_on_page", "scroll_depth"), "event:page")
    named = sorted(((k[0], v[0]) for k, v in truth.items() if k != ("(other)",)), key=lambda r: (-r[1], r[0]))
    want = [(label, int(v)) for label, v in named[:10]] + [("(other)", int(truth[("(other)",)][0]))]
    assert [(html.unescape(label), int(v)) for label, v in shown] == want


def test_the_report_agrees_with_the_oracle_and_changes_match_the_dashboards(world: World) -> None:
    summary = json.loads((world.data / "reports" / DEMO / END.isoformat() / "summary.json").read_text())
    truth = expected(world.events, DEMO, END, END, METRICS)[()]
    before = expected(world.events, DEMO, DAYS[1], DAYS[1], METRICS)[()]
    for spec in BREAKDOWNS:
        rows = {(r["value"],): [r[m] for m in spec.metrics] for r in summary["breakdowns"][spec.key]["rows"]}
        assert rows == truth_rows(world, spec.metrics, spec.dimension, END, END), spec.key
    page = world.client.get(f"/sites/{DEMO}", params={"period": "custom", "from": str(END), "to": str(END)}).text
    report = (world.data / "reports" / DEMO / END.isoformat() / "index.html").read_text()
    labels = dict(re.findall(r'<div class="kpi"><div class="l">([^<]*)</div><div class="v">[^<]*</div>'
                             r'<div class="l"><span class="[^"]*">([^<]*)</span> vs previous day', report))  # fmt: skip
    for m in ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "time_on_page"):
        kpi = summary["kpis"][m]
        assert kpi["value"] == truth[m] and kpi["previous"]["previous"] == before[m], m
        # One % change implementation: the report's number, the dashboards' card, the oracle's inputs.
        want = change(m, truth[m], before[m], int(before["visits"]))
        assert kpi["change"]["previous"] == want, m
        card = re.search(rf'data-metric="{m}">.*?class="change[^"]*"[^>]*>([^<]*)<', page, re.S)
        assert card is not None and card.group(1) == shown_change(m, want), m
        # ...and the report writes the same change in the same words as the card (one formatting).
        assert html.unescape(labels[KPI_LABELS[m]]) == card.group(1), m


def test_api_time_buckets_are_compared_with_the_bucket_at_the_same_offset(world: World) -> None:
    body = {"metrics": ["visitors", "visits"], "date_range": [str(DAYS[1]), str(DAYS[2])], "dimensions": ["time:day"],
            "include": {"comparisons": {"mode": "previous_period"}}}  # fmt: skip
    answer = api(world, body)
    pairs = {r["dimensions"][0]: (r["comparison"]["dimensions"][0], r["comparison"]["metrics"])
             for r in answer["results"]}  # type: ignore[index]  # fmt: skip
    # 2026-11-21..22 against 2026-11-19..20: 11-21 with 11-19 (no data: the lake starts on 11-20), 11-22 with 11-20.
    assert set(pairs) == {"2026-11-21", "2026-11-22"}
    assert pairs["2026-11-21"][0] == "2026-11-19" and pairs["2026-11-22"][0] == "2026-11-20"
    day0 = expected(world.events, DEMO, DAYS[0], DAYS[0], ("visitors", "visits"))[()]
    assert pairs["2026-11-22"][1] == [day0["visitors"], day0["visits"]]


def test_the_surfaces_show_no_day_keys(world: World) -> None:
    keys = {str(e.day_key) for e in world.events if e.day_key > 10**6}
    texts = [world.client.get(f"/sites/{DEMO}", params={"period": "custom", "from": str(START), "to": str(END)}).text]
    texts += [p.read_text() for p in (world.data / "reports").rglob("*") if p.is_file()]
    joined = "\n".join(texts)
    assert not [k for k in keys if re.search(rf"\b{k}\b", joined)]
    assert os.path.exists(world.data / "reports" / DEMO / END.isoformat() / "index.html")
