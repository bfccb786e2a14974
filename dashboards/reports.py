"""The one door to the aggregator's query API (no SQL, no DuckDB in this package).

Pages ask typed :class:`~aggregator.query.QueryRequest` questions; the HTTP
Stats API hands its JSON to the aggregator's own v2 parser and renderer. Both
end in the same :class:`~aggregator.query.Querier`, so a number on a page, in a
CSV and from the API is the same number, k-anonymity included (rows under K
visitors fold into ``(other)``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from aggregator.filters import Expr
from aggregator.funnels import FunnelResult
from aggregator.lake import Lake
from aggregator.query import CurrentVisitors, Querier, QueryError, QueryRequest, QueryResult
from aggregator.settings import Settings as AggregatorSettings
from aggregator.stats_api import parse, render
from collector.siteconfig import Site


class ReportError(ValueError):
    """The query names an unknown metric, dimension or filter; the message says which (HTTP 400)."""


class Reports:
    def __init__(self, settings: AggregatorSettings, page_max_stale: float) -> None:
        # Overview pages never wait for today to be rolled up in memory right after an ingest batch: they read
        # today's previous rollup (one batch old, `ingest --follow` rebuilds it) and say as of when. The Stats
        # API and exports stay exact.
        self.page_max_stale = page_max_stale
        self._querier = Querier(settings)
        self._lake = Lake(settings.lake_dir)
        self.k_anonymity = settings.k_anonymity
        self.raw_retention_days = settings.raw_retention_days
        self.aggregate_retention_months = settings.aggregate_retention_months

    def run(self, request: QueryRequest, now: dt.datetime | None = None, *, page: bool = False) -> QueryResult:
        return self.run_many([request], now, page=page)[0]

    def run_many(
        self, requests: list[QueryRequest], now: dt.datetime | None = None, *, page: bool = False
    ) -> list[QueryResult]:
        """Several queries in one batch (one page): the aggregator lists and sessionizes the days once.

        ``page``: an overview page, which may read today from its rollup one batch old (and says so);
        anything else (exports) is exact.
        """
        max_stale = self.page_max_stale if page else 0.0
        try:
            return self._querier.run_many(requests, now=now or dt.datetime.now(dt.UTC), max_stale=max_stale)
        except QueryError as exc:
            raise ReportError(str(exc)) from None

    def current_visitors(self, site: str, now: dt.datetime, minutes: int = 5) -> CurrentVisitors:
        """Visitors in the last minutes (k-anonymous), and the newest ingested event's time."""
        try:
            return self._querier.current_visitors(site, now, minutes)
        except QueryError as exc:
            raise ReportError(str(exc)) from None

    def site(self, site: str) -> Site | None:
        """The site's goals, funnels and property keys as the query layer reads them (what its answers use)."""
        return self._querier.config().site(site)

    def funnel(
        self,
        site: str,
        dates: tuple[dt.date, dt.date],
        steps: tuple[str, ...],
        now: dt.datetime,
        filters: tuple[Expr, ...] = (),
    ) -> FunnelResult:
        """Visitors through ``steps`` (goal names, in order) within a visit; each step k-anonymous or None."""
        try:
            return self._querier.funnel(site, dates, steps, now, filters)
        except QueryError as exc:
            raise ReportError(str(exc)) from None

    def api(self, body: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
        """A Stats API v2 JSON query answered in the v2 JSON shape."""
        try:
            request = parse(dict(body))
            result = self._querier.run(request, now=now or dt.datetime.now(dt.UTC), max_stale=0.0)
        except QueryError as exc:
            raise ReportError(str(exc)) from None
        answer: dict[str, Any] = render(result)
        return answer

    def first_day(self, site: str) -> dt.date | None:
        """The site's first day with data in the lake (events or daily aggregates), or None."""
        days = self._lake.event_days(site) + self._lake.rollup_days(site)
        return min(days) if days else None

    def last_ingest(self) -> dt.datetime | None:
        """When the aggregator last committed an ingest batch (how fresh the newest numbers are)."""
        try:
            mtime = self._lake.manifest_path.stat().st_mtime
        except FileNotFoundError:
            return None
        return dt.datetime.fromtimestamp(mtime, dt.UTC)
