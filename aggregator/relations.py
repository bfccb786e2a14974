"""The relations a scope reads: its days' coded tables, and the visits, hits and pages its filters match.

The base of :class:`aggregator.scope.Scope` (split out of it): everything here reads the scope's page,
days and filters, and names temp tables through the page.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from aggregator.dimensions import GOAL, PROPS
from aggregator.filters import Compiler, Expr, leaves
from aggregator.lake import sql_path
from aggregator.querybuild import HITS_READ, PAGES_READ, VISIT_READ, visits_from_hits_sql
from aggregator.rollup import TABLE_KINDS
from aggregator.sessions import sessionized_sql
from aggregator.tables import Tables, build_sql, tables

if TYPE_CHECKING:
    from aggregator.asks import Ask, DaySource
    from aggregator.filters import GoalLike
    from aggregator.page import Page


Mode = Literal["rollup", "tables"]


class Relations:
    page: Page
    site: str
    filters: tuple[Expr, ...]
    ts: tuple[dt.datetime, dt.datetime] | object
    raw_days: list[DaySource]
    visit_level: bool
    goals: tuple[GoalLike, ...]
    _need: dict[Mode, dict[str, Ask]]
    _tables: dict[str, str]
    _coded: Tables | None

    def coded(self) -> Tables:
        """Views of the coded tables (dict, visits, hits) of every raw day in range: built files or in memory."""
        if self._coded is None:
            # Scopes of the same days (a scope and its neighbours) read the same coded tables: made once a page.
            key = (self.site, tuple(d.day for d in self.raw_days), self.ts)
            shared = self.page.coded.get(key)
            if shared is not None:
                self._coded = shared
                return shared
            prefix = self.page.name("t")
            if isinstance(self.ts, tuple):
                self._coded = self._in_range(prefix)
            else:
                built = [d for d in self.raw_days if d.tables is not None]
                missing = [d.missing(self.site) for d in self.raw_days if d.tables is None]
                computed = None
                if missing:
                    computed = self.page.name("mem")
                    self.page.store.copy_tables(self.page.cur, computed, self.page.store.tables(missing))
                for kind in TABLE_KINDS:
                    parts = []
                    if built:
                        files = ", ".join(sql_path(d.tables[kind]) for d in built if d.tables is not None)
                        parts.append(f"SELECT * FROM read_parquet([{files}])")
                    if computed is not None:
                        parts.append(f"SELECT * FROM {computed}_{kind}")
                    # The dictionary is small and joined by every column: read once; the rest are scanned by need.
                    what = "TABLE" if kind == "dict" else "VIEW"
                    self.page.cur.execute(f"CREATE TEMP {what} {prefix}_{kind} AS {' UNION ALL BY NAME '.join(parts)}")
                self._coded = tables(prefix)
            self.page.coded[key] = self._coded
        return self._coded

    def events_relation(self) -> str:
        """A view of the raw events of every raw day in range, with their ``day`` (for what needs each event)."""
        if "events" not in self._tables:
            files = ", ".join(sql_path(f) for d in self.raw_days for f in d.files)
            name = self.page.name("ev")
            self.page.cur.execute(
                f"CREATE TEMP VIEW {name} AS SELECT *, CAST(ts AS DATE) AS day FROM read_parquet([{files}])"
            )
            self._tables["events"] = name
        return self._tables["events"]

    def _in_range(self, prefix: str) -> Tables:
        """Tables of only the events inside the datetime bounds (their visits sessionized over whole days)."""
        assert isinstance(self.ts, tuple)
        files = [str(f) for d in self.raw_days for f in d.files]
        t0, t1 = (t.astimezone(dt.UTC).replace(tzinfo=None) for t in self.ts)
        rows = self.page.name("tsr")
        self.page.cur.execute(
            f"CREATE TEMP TABLE {rows} AS WITH {sessionized_sql('read_parquet($files)')} "
            "SELECT * FROM rows WHERE ts BETWEEN $t0 AND $t1",
            {"files": files, "t0": t0, "t1": t1},
        )
        for statement in build_sql(rows, prefix):
            self.page.cur.execute(statement)
        return tables(prefix)

    def compiler(self, params: dict[str, object]) -> Compiler:
        return Compiler(params, self.coded().dict, prefix=f"c{len(params)}_", goals=self.goals)

    def condition(self, params: dict[str, object]) -> str:
        """This scope's filters as one SQL condition over the coded visits or hits."""
        return self.compiler(params).all(self.filters)

    def _codes(self) -> tuple[str, ...]:
        """The code columns the asked columns group by (only those are read from the tables)."""
        codes = {p.expr for a in self._need["tables"].values() for p in a.column.parts if p.dimension}
        return tuple(sorted(codes - {"c_page", "c_name"}))

    def matching_hits(self, params: dict[str, object]) -> str:
        """The hits that match the filters, narrowed to what the page reads: a subquery whose values join ``params``.

        Not materialized: a query reads only the columns it needs, and DuckDB filters while it scans.
        """
        return self._matching(self.coded().hits, HITS_READ, params)

    def pages_usable(self) -> bool:
        """Whether the pages table can answer: not under a filter on what differs between events of one page
        (their name, the goals they convert, their properties), which only the hits hold."""
        return not any(
            leaf.dimension in ("event:name", GOAL) or leaf.dimension.startswith(PROPS)
            for f in self.filters
            for leaf in leaves(f)
        )

    def matching_pages(self, params: dict[str, object]) -> str:
        """The pages that match the filters (a subquery like :meth:`matching_hits`); see :meth:`pages_usable`."""
        return self._matching(self.coded().pages, PAGES_READ, params)

    def _matching(self, table: str, read: str, params: dict[str, object]) -> str:
        """``table``'s rows that match the filters, with the columns ``read`` and the asked codes."""
        if not self.filters:
            return table
        cols = read + "".join(f", {c}" for c in self._codes())
        return f"(SELECT {cols} FROM {table} WHERE {self.condition(params)})"

    def visits_relation(self, params: dict[str, object]) -> str:
        """What the matching visits contribute, as a relation (a subquery whose values join ``params``): the
        filtered visits, or (a filter on events) the matching hits' (or pages'), with the asked codes."""
        t = self.coded()
        if "visits" in self._tables or not self.filters:
            return self._tables.get("visits", t.visits)
        if self.visit_level:
            cols = VISIT_READ + "".join(f", {c}" for c in self._codes())
            return f"(SELECT {cols} FROM {t.visits} WHERE {self.condition(params)})"
        if self.pages_usable():  # the same visits from the matching pages (fewer rows than the hits)
            return visits_from_hits_sql(self.matching_pages(params), self._codes(), t.visits, pages=True)
        return visits_from_hits_sql(self.matching_hits(params), self._codes(), t.visits)

    def matching_visits(self) -> str:
        """:meth:`visits_relation` as a temp table, for the probes that read it again and again (made on their
        first ask: the day rows read the relation in their own statement)."""
        if "visits" not in self._tables:
            params: dict[str, object] = {}
            relation = self.visits_relation(params)
            if relation.isidentifier():  # the coded visits themselves (no filter)
                name = relation
            else:
                name = self.page.name("mv")
                self.page.cur.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {relation}", params)
            self._tables["visits"] = name
        return self._tables["visits"]
