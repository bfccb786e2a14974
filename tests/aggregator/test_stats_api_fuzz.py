"""Stats API bodies of the right shape in every combination: always 200 or a 400 with a message, never a crash.

Hypothesis draws requests a client could write from the documented vocabulary
(metrics, dimensions, operators, modifiers, order_by over what was asked,
comparisons, pagination, include) and asks them of one small real lake; any
exception other than the query layer's own refusal (a 400) fails the test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.dimensions import PUBLIC_DIMENSIONS
from aggregator.filters import FILTER_OPS
from aggregator.ingest import Ingester
from aggregator.metrics import METRICS
from aggregator.query import Querier
from aggregator.settings import Settings
from aggregator.stats_api import answer
from aggregator.synth import Traffic, generate, write_segments

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
SITE = "www.onecloud.example"
FILTER_DIMS = [d for d in PUBLIC_DIMENSIONS if not d.startswith("time:")] + ["event:goal", "event:props:url"]
VALUES = ["Chrome", "/", "/docs", "Google", "mobile", "(none)", "Direct / None", "Signup", "x" * 40, ""]


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory) -> Querier:
    data: Path = tmp_path_factory.mktemp("fuzz") / "d"
    s = Settings(data_dir=data, duckdb_threads=2)
    write_segments(generate(Traffic(dt.date(2026, 11, 19), 3, {SITE: 40}, seed=11)), s.sealed_dir)
    Ingester(s).run_once()
    return Querier(s)


leaf = st.builds(
    lambda op, dim, values, ci: [op, dim, values] + ([{"case_sensitive": ci}] if ci is not None else []),
    st.sampled_from(FILTER_OPS),
    st.sampled_from(FILTER_DIMS),
    st.lists(st.sampled_from(VALUES), min_size=1, max_size=3),
    st.sampled_from([None, True, False]),
)
expr = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda h, c: [h, c], st.sampled_from(["and", "or"]), st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: ["not", c], inner),
    ),
    max_leaves=4,
)
date_range = st.one_of(
    st.sampled_from(["day", "7d", "30d", "month", "6mo", "12mo", "year", "all"]),
    st.just(["2026-11-19", "2026-11-21"]),
    st.just(["2026-11-20T10:00:00Z", "2026-11-21T03:30:00+01:00"]),
)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    metrics = draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=4, unique=True))
    dims = draw(st.lists(st.sampled_from([*PUBLIC_DIMENSIONS, "time", "event:goal"]), max_size=2, unique=True))
    body: dict[str, Any] = {"site_id": SITE, "metrics": metrics, "date_range": draw(date_range), "dimensions": dims}
    if draw(st.booleans()):
        body["filters"] = draw(st.lists(expr, max_size=2))
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(metrics + dims), max_size=2, unique=True))
        body["order_by"] = [[k, draw(st.sampled_from(["asc", "desc"]))] for k in keys]
    if draw(st.booleans()):
        body["pagination"] = {"limit": draw(st.integers(1, 20)), "offset": draw(st.integers(0, 5))}
    include: dict[str, Any] = {}
    if draw(st.booleans()):
        include["comparisons"] = {"mode": draw(st.sampled_from(["previous_period", "year_over_year"]))}
    if draw(st.booleans()):
        include["time_labels"] = True
    if draw(st.booleans()):
        include["total_rows"] = True
    if include:
        body["include"] = include
    return body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies())
def test_a_well_shaped_body_is_answered_or_refused_never_a_crash(querier: Querier, body: dict[str, Any]) -> None:
    status, reply = answer(querier, body, NOW)
    assert status in (200, 400), (status, body)
    if status == 400:
        assert isinstance(reply.get("error"), str) and reply["error"], body
    else:
        assert isinstance(reply["results"], list)
