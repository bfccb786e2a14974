from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from aggregator.ingest import Ingester
from aggregator.query import Querier, QueryError
from aggregator.settings import Settings
from aggregator.stats_api import answer, parse
from aggregator.synth import Traffic, generate, write_segments
from tests.aggregator.conftest import run_cli

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
SITE = "www.onecloud.example"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("api") / "d", duckdb_threads=2)
    write_segments(generate(Traffic(dt.date(2026, 11, 20), 2, {SITE: 60}, seed=5)), settings.sealed_dir)
    Ingester(settings).run_once()
    return settings


def test_v2_shape_round_trip(lake: Settings) -> None:
    body = {
        "site_id": SITE,
        "metrics": ["visitors", "pageviews", "bounce_rate"],
        "date_range": ["2026-11-20", "2026-11-21"],
        "dimensions": ["visit:source"],
        "filters": [["is_not", "visit:device", ["tablet"]], ["contains", "event:page", ["/"]]],
        "order_by": [["pageviews", "desc"]],
        "pagination": {"limit": 3, "offset": 0},
        "include": {"total_rows": True, "comparisons": {"mode": "previous_period"}},
    }
    status, reply = answer(Querier(lake), body, NOW)
    assert status == 200, reply
    assert set(reply) == {"results", "meta", "query"}
    assert 0 < len(reply["results"]) <= 3
    first = reply["results"][0]
    assert isinstance(first["dimensions"][0], str) and len(first["metrics"]) == 3
    assert reply["meta"]["k_anonymity"] == 5 and reply["meta"]["total_rows"] >= len(reply["results"])
    assert reply["query"]["date_range"] == ["2026-11-20", "2026-11-21"]
    assert reply["query"]["filters"][0] == ["is_not", "visit:device", ["tablet"]]
    json.dumps(reply)  # plain JSON all the way down


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"site_id": SITE, "metrics": ["visitors", "sessions"]}, '#/metrics/1: Invalid metric "sessions"'),
        (
            {"site_id": SITE, "metrics": ["visitors"], "dimensions": ["visit:country"]},
            '#/dimensions/0: Invalid dimension "visit:country"',
        ),
        (
            {"site_id": SITE, "metrics": ["visitors"], "filters": [["is", "event:visit_id", ["x"]]]},
            "#/filters/0: Invalid filter",
        ),
        (
            {"site_id": SITE, "metrics": ["visitors"], "date_range": ["2026-13-01", "2026-11-02"]},
            "#/date_range: Invalid date range",
        ),
        ({"site_id": SITE, "metrics": ["visitors"], "select": "*"}, "#/select: Schema does not allow"),
        ({"metrics": ["visitors"]}, "site_id"),
        ([1, 2], "JSON object"),
    ],
)
def test_errors_are_400_and_name_the_problem(lake: Settings, body: object, needle: str) -> None:
    status, reply = answer(Querier(lake), body, NOW)
    assert status == 400 and needle in reply["error"]
    with pytest.raises(QueryError):
        parse(body)


def test_no_request_shape_returns_events_or_day_keys(lake: Settings) -> None:
    for dim in ("event:day_key", "visit:day_key", "event:ts", "event:*"):
        status, _ = answer(Querier(lake), {"site_id": SITE, "metrics": ["visitors"], "dimensions": [dim]}, NOW)
        assert status == 400


def test_cli_query_prints_the_answer(lake: Settings, tmp_path: Path) -> None:
    q = json.dumps({"site_id": SITE, "metrics": ["visitors"], "date_range": ["2026-11-20", "2026-11-21"]})
    out = run_cli(lake, "query", "--json", q)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["results"][0]["metrics"][0] > 0
    bad = run_cli(lake, "query", "--json", json.dumps({"site_id": SITE, "metrics": ["nope"]}))
    assert bad.returncode == 2 and "nope" in bad.stderr
