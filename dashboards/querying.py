"""The dashboards' one door to the aggregator's query API (no SQL, no DuckDB in this package).

Pages ask typed :class:`~aggregator.query.QueryRequest` questions; the HTTP
Stats API hands its JSON to :func:`aggregator.stats_api.answer`, the path the
``aggregator query`` command and the tests take too. Both end in the same
:class:`~aggregator.query.Querier`, so a number on a page, in a CSV and from
the API is the same number, k-anonymity included (rows under K visitors fold
into ``(other)``). A question the aggregator refuses raises its
:class:`~aggregator.query.QueryError` (HTTP 400), not a copy of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from aggregator.drops import Dropped, dropped
from aggregator.filters import Expr
from aggregator.funnels import FunnelResult
from aggregator.lake import Lake
from aggregator.query import CurrentVisitors, Querier, QueryRequest, QueryResult
from aggregator.settings import Settings as AggregatorSettings
from aggregator.stats_api import answer
from collector.siteconfig import Site


class Queries:
    def __init__(self, settings: AggregatorSettings, page_max_stale: float) -> None:
        # Overview pages never wait for today to be rolled up in memory right after an ingest batch: they read
        # today's previous rollup (one batch old, `ingest --follow` rebuilds it) and say as of when. The Stats
        # API and exports stay exact.
        self.page_max_stale = page_max_stale
        self._settings = settings
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
        return self._querier.run_many(requests, now=now or dt.datetime.now(dt.UTC), max_stale=max_stale)

    def current_visitors(self, site: str, now: dt.datetime, minutes: int = 5) -> CurrentVisitors:
        """Visitors in the last minutes (k-anonymous), and the newest ingested event's time."""
        return self._querier.current_visitors(site, now, minutes)

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
        return self._querier.funnel(site, dates, steps, now, filters)

    def api(self, body: Mapping[str, Any], now: dt.datetime | None = None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a Stats API v2 query: exact (never a stale rollup), 400 naming a bad key."""
        return answer(self._querier, dict(body), now or dt.datetime.now(dt.UTC), max_stale=0.0)

    def dropped(self, site: str, start: dt.date, end: dt.date) -> Dropped:
        """Events the collectors filtered out for ``site`` on those days (bots, opt-out, ...): counts, not visitors."""
        return dropped(self._settings, site, start, end)

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
