"""The one door to the aggregator: Stats API v2 queries in, v2 answers out.

Dashboards hold no SQL and no DuckDB (import contract). Pages and the HTTP Stats
API both go through :meth:`Reports.query`, so a number on a page, in a CSV and
from the API is the same number, k-anonymity included (the aggregator folds
rows under K visitors into ``(other)``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aggregator.query import Querier, QueryError
from aggregator.settings import Settings as AggregatorSettings
from aggregator.stats_api import parse_stats_request, render


class ReportError(ValueError):
    """The query names an unknown metric, dimension or filter; the message says which (HTTP 400)."""


class Reports:
    def __init__(self, data_dir: Path, environ: Mapping[str, str]) -> None:
        settings = AggregatorSettings.from_env(environ)
        # The dashboards' data dir wins: one setting, one place the lake lives.
        self._querier = Querier(dataclasses.replace(settings, data_dir=data_dir))
        self.k_anonymity = settings.k_anonymity
        self.raw_retention_days = settings.raw_retention_days
        self.aggregate_retention_months = settings.aggregate_retention_months

    def query(self, body: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
        try:
            request = parse_stats_request(dict(body))
            result = self._querier.run(request, now=now or dt.datetime.now(dt.UTC))
        except (QueryError, ValueError, TypeError) as exc:
            raise ReportError(str(exc)) from None
        answer: dict[str, Any] = render(result)
        return answer
