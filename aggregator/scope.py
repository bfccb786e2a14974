"""The table decider and the relations a query reads: which table answers what, for one site, days and filters.

A :class:`Scope` is one (site, days, filters) of a page of queries
(:class:`Page`: one ``Querier.run_many`` call). For each column a request
groups by, it decides the table (Plausible's ``table_decider``):

* **rollup** — no filters and a column the daily rollups hold (totals, time
  buckets of days, one rollup dimension or pair): summed rollup rows, and days
  whose rollup is not built yet rolled up in memory once (aggregator/daycache.py);
* **slices** — filters on browser, OS and device only, over whole days, and
  columns the rollups hold: the matching cells of the days' slices
  (aggregator/slices.py), summed like rollup rows; the privacy rules' probes
  read the tables, as below (the scope's mode is still ``tables``: only where
  its day rows come from differs);
* **tables** — anything else: the day's coded per-visit and hits tables
  (aggregator/tables.py), filtered — visit columns from the visits (or, under
  a filter on events, from the visits the matching hits make up), event columns
  and scroll depth from the hits.

Every table yields the same *day rows* (aggregator/querybuild.py), so the
privacy rules (aggregator/kanon.py) read them the same way whichever answered.
All columns a page asks of one scope are computed in one statement; the
relations it reads are aggregator/relations.py's, and a filtered scope's
filtered neighbours are counted with it in one pass (aggregator/fused.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import slices
from aggregator.asks import Ask, DaySource, ask
from aggregator.daycache import MissingDay, SumRow
from aggregator.dimensions import ROLLUP_PAIRS
from aggregator.filters import Expr, is_visit_level
from aggregator.fused import Fusion, fusable
from aggregator.goalscope import goal_hits
from aggregator.kanon import Agg, Key
from aggregator.metrics import COMPONENT_NAMES, Components
from aggregator.periods import bucket
from aggregator.querybuild import TOTAL, Column, day_rows_sql, sums_sql
from aggregator.querycomps import ALL_COMPONENTS, LIGHT_METRICS, components_of
from aggregator.relations import Mode, Relations
from aggregator.rollup import SLICES_KIND, rollup_format
from aggregator.tables import Tables

if TYPE_CHECKING:
    from aggregator.page import Page

PAIRS = {v: k for k, v in ROLLUP_PAIRS.items()}


@dataclass(slots=True)
class Sums:
    """A scope's summed rows for one table: per column name, key → Agg (and the value as the SQL wrote it)."""

    groups: dict[str, dict[Key, Agg]] = field(default_factory=dict)
    values: dict[str, dict[Key, str]] = field(default_factory=dict)


class Scope(Relations):
    def __init__(
        self,
        page: Page,
        site: str,
        start: dt.date,
        end: dt.date,
        filters: tuple[Expr, ...],
        ts: tuple[dt.datetime, dt.datetime] | object,
    ) -> None:
        self.page, self.site, self.start, self.end, self.filters, self.ts = page, site, start, end, filters, ts
        bounds = page.bounds(site)
        days: list[DaySource] = []
        if bounds is not None:
            day, last = max(start, bounds[0]), min(end, bounds[1])
            while day <= last:
                days.append(page.day(site, day))
                day += dt.timedelta(days=1)
        self.days = days
        self.raw_days = [d for d in days if d.files]
        self.purged_days = [d for d in days if not d.files and d.rollup is not None]
        self.visit_level = all(is_visit_level(f) for f in filters)
        self.goals = page.goals(site)
        self._need: dict[Mode, dict[str, Ask]] = {"rollup": {}, "tables": {}}
        self._scroll: set[str] = set()  # the tables columns some request asks scroll depth of
        self._heavy: set[str] = set()  # event columns some request asks visit metrics of (visits, bounce rate…)
        self._comps: dict[str, frozenset[str]] = {}  # the components the requests of each column need
        self._sums: dict[Mode, Sums] = {}
        self._tables: dict[str, str] = {}
        self._coded: Tables | None = None
        self.segment_reasons: dict[str, str | None] = {}  # per table: why the filtered totals cannot be shown
        self.fused_with: list[Scope] = []  # the neighbours in tables mode, counted in one pass with this scope
        self.sliced_with: list[Scope] = []  # the neighbours its slices answer, read with this scope's if it is
        self._sliced: tuple[str, list[Scope]] | None = None  # (visitors per scope, scopes) of one slices read
        self._no_slices = False  # a day of the range has no cells (its slices were read once: not again)
        self._fusion: Fusion | None = None  # set by day_rows when the neighbours are counted in its statement
        self._fused_visits = ""  # the temp table of the fused visits, once made
        #: What each column's rows gain or lose against a neighbour (aggregator/neighbours.py), by neighbour.
        self.diff_cache: dict[int, dict[str, list[tuple[str, int, int]]]] = {}

    # --- the decider -------------------------------------------------------------------------------------

    def mode(self, a: Ask) -> Mode:
        if not self.filters and self.ts is None and a.rollup_name is not None:
            return "rollup"
        return "tables"

    def need(self, a: Ask, metrics: tuple[str, ...]) -> Mode:
        """Register a column this page asks of the scope (before any is computed); returns its table."""
        mode = self.mode(a)
        self._need[mode][a.column.name] = a
        self._need[mode].setdefault("", ask((), self.start))
        if mode == "tables":
            if "scroll_depth" in metrics:  # time buckets are bucketed from the totals
                self._scroll.add("" if a.time_bucket else a.column.name)
            if not set(metrics) <= LIGHT_METRICS:
                self._heavy.add(a.column.name)
            self._comps[a.column.name] = self._comps.get(a.column.name, frozenset()) | components_of(metrics)
        return mode

    def add_neighbour(self, other: Scope, mode: Mode) -> None:
        """Register a neighbouring scope this one's answers are compared with (before any is computed)."""
        # An unfiltered neighbour is the rollups' (or every row): nothing to gain from counting it with this one.
        # One that its slices answer (aggregator/slices.py) is read with this scope's slices, if they answer
        # too (:meth:`_slice_day_rows`); any other is counted in this scope's pass over the tables.
        if mode != "tables" or not other.filters or other in self.fused_with or other in self.sliced_with:
            return
        if other.slice_files() is None:
            self.fused_with.append(other)
        else:
            self.sliced_with.append(other)

    def tables_asks(self) -> list[Ask]:
        return list(self._need["tables"].values())

    def fused(self, other: Scope) -> tuple[str, int] | None:
        """(table, j): the relation of this scope's and its fused neighbours' visitors per day row
        ``(day, dimension, value, v0, v1, …)`` (aggregator/fused.py) and the column ``v{j}`` of ``other``'s;
        None when they are not counted together (also when this scope's slices answered its day rows: a
        neighbour registered while its own slices did not answer is then compared by its own day rows)."""
        if other not in self.fused_with or not fusable(self, self.fused_with):
            return None
        self.day_rows()
        if self._fusion is None:
            return None
        return self._tables["fused"], self._fusion.others.index(other) + 1

    def slice_fused(self, other: Scope) -> tuple[str, int] | None:
        """As :meth:`fused`, for a neighbour whose day rows came from the read of the slices this scope made
        for itself and them: (the relation ``(day, dimension, value, v0, v1, …)``, the column ``v{j}`` of
        ``other``'s); None otherwise (the two scopes' day rows are compared)."""
        self.day_rows()
        if self._sliced is None or other not in self._sliced[1]:
            return None
        return self._sliced[0], self._sliced[1].index(other)

    def fused_visits(self) -> str:
        """The fused visits (after :meth:`fused` found a neighbour): each counted visit row any of the scopes
        holds, with its codes, profile and memberships ``m0`` (this scope), ``m1``, … — made on first use:
        only the profiles of a difference read them."""
        assert self._fusion is not None
        if not self._fused_visits:
            self._fused_visits = self.page.name("fv")
            visits, params = self._fusion.visits_sql()
            self.page.cur.execute(f"CREATE TEMP TABLE {self._fused_visits} AS {visits}", params)
        return self._fused_visits

    # --- sums --------------------------------------------------------------------------------------------

    def groups(self, a: Ask, mode: Mode) -> dict[Key, Agg]:
        return self._summed(mode).groups.get(a.column.name, {})

    def value_of(self, a: Ask, mode: Mode, key: Key) -> str:
        """The value of a row as the SQL wrote it (a JSON array for several dimensions)."""
        return self._summed(mode).values.get(a.column.name, {}).get(key, key[0] if key else "")

    def _summed(self, mode: Mode) -> Sums:
        if mode not in self._sums:
            self._sums[mode] = self._rollup_sums() if mode == "rollup" else self._sql_sums()
        return self._sums[mode]

    def rollup_sources(
        self, a: Ask | None = None, *, raw_only: bool = False
    ) -> tuple[list[str], list[MissingDay], int]:
        """Rollup files, days to roll up in memory, and how many rollups are one batch behind.

        A rollup built before pair dimensions existed cannot answer a pair: such a day is rolled up anew
        from its raw files, or (purged) left out.
        """
        pair = a is not None and a.rollup_name in PAIRS
        files, missing, stale = [], [], 0
        for d in self.raw_days if raw_only else self.days:
            if d.rollup is not None and (not pair or rollup_format(d.rollup) >= 2):
                files.append(str(d.rollup))
                stale += d.built_at is not None
            elif d.files:
                missing.append(d.missing(self.site))
        return files, missing, stale

    def _rollup_sums(self) -> Sums:
        asks = list(self._need["rollup"].values())
        # Pairs may need other sources than the rest (older rollups cannot answer them): one sum per source list.
        by_sources: dict[tuple[tuple[str, ...], tuple[MissingDay, ...]], list[Ask]] = {}
        for a in asks:
            files, missing, _ = self.rollup_sources(a)
            by_sources.setdefault((tuple(files), tuple(missing)), []).append(a)
        out = Sums()
        for (file_set, missing_set), group in by_sources.items():
            dims = tuple(sorted({a.rollup_name for a in group if a.rollup_name}))
            rows = self.page.store.sums(list(file_set), list(missing_set), dims) if file_set or missing_set else []
            part = self._collect(group, rows, rollup=True)
            out.groups.update(part.groups)
            out.values.update(part.values)
        return out

    def purged_groups(self, a: Ask) -> dict[Key, Agg]:
        """The column's rollup rows of the days whose raw events are purged (they have nothing else)."""
        usable = self.rollup_sources(a)[0]
        files = [str(d.rollup) for d in self.purged_days if str(d.rollup) in usable]
        if not files:
            return {}
        dims = (a.rollup_name,) if a.rollup_name else ()
        return self._collect([a], self.page.store.sums(files, [], dims), rollup=True).groups[a.column.name]

    def _collect(self, asks: list[Ask], rows: list[SumRow], *, rollup: bool) -> Sums:
        out = Sums()
        for a in asks:
            name = a.rollup_name if rollup else a.column.name
            groups: dict[Key, Agg] = {}
            values: dict[Key, str] = {}
            for dimension, value, day, comps, max_daily in rows:
                if a.time_bucket or not a.dimensions:
                    if dimension or day is None:
                        continue
                    key: Key = (bucket(a.time_bucket, day, self.start),) if a.time_bucket else ()
                elif dimension == name:
                    key = tuple(json.loads(value)) if len(a.dimensions) > 1 else (value,)
                else:
                    continue
                c = Components.from_row(comps)
                if key in groups:
                    groups[key].comps.add(c)
                    groups[key].max_daily = max(groups[key].max_daily, _int(max_daily))
                else:
                    groups[key] = Agg(c, _int(max_daily))
                    # A time bucket's value is its label, as its column's SQL writes it (what the probes select by).
                    values[key] = key[0] if a.time_bucket else value
            out.groups[a.column.name] = groups
            out.values[a.column.name] = values
        return out

    def _sql_sums(self) -> Sums:
        asks = list(self._need["tables"].values())
        if not self.raw_days:
            return Sums()
        table = self.day_rows()
        rows = self.page.cur.execute(sums_sql(table)).fetchall()
        return self._collect(asks, [(str(r[0]), str(r[1]), r[2], tuple(r[3:-1]), r[-1]) for r in rows], rollup=False)

    def day_rows(self) -> str:
        """The relation of this scope's day rows for every column asked of the tables (computed once): a
        temp table, or a view of one (fused neighbours below; slices, :meth:`_slice_day_rows`, where a
        neighbour's rows may be a view of the read its scope made).

        With fused neighbours (aggregator/fused.py), one statement computes both this scope's day rows and
        every scope's visitors of every column, from one scan of the visits (and one of the pages): the day
        rows are a view of its result, and the neighbours' visitors another (:meth:`fused`).
        """
        if "day_rows" not in self._tables and self._slice_day_rows():
            return self._tables["day_rows"]
        if "day_rows" not in self._tables:
            cols = [TOTAL, *(a.column for a in self._need["tables"].values() if a.dimensions and not a.time_bucket)]
            params: dict[str, object] = {}
            t = self.coded()
            unique = list({c.name: c for c in cols}.values())
            page_only = [c for c in unique if c.per_event and all(p.expr == "c_page" for p in c.parts)]
            other_events = [c for c in unique if c.per_event and c not in page_only]
            # Pages answer the page column and scroll depth of visit columns; hits the other event columns.
            visit_scroll = any(not c.per_event and c.name in self._scroll for c in unique)
            use_pages = self.pages_usable() and bool(page_only or visit_scroll)
            fusion = Fusion(self, list(self.fused_with)) if fusable(self, self.fused_with) else None
            ctes = fusion.ctes(params, pages=use_pages) if fusion else []
            if fusion:
                visits, pages = "fzv", "(SELECT * FROM fzp WHERE m0)" if use_pages else None
            else:
                visits, pages = self.visits_relation(params), self.matching_pages(params) if use_pages else None
            goal_cols = [c for c in other_events if any(p.expr == "goal" for p in c.parts)]
            hits_for = {c.name: goal_hits(self, params) for c in goal_cols}
            plain = [c for c in other_events if c not in goal_cols]
            event_scroll = any(c in plain and c.name in self._scroll for c in unique)
            needs_hits = bool(plain) or event_scroll or (not use_pages and bool(page_only or visit_scroll))
            sql = day_rows_sql(
                unique,
                params,
                visits=visits,
                hits=self.matching_hits(params) if needs_hits else None,
                pages=pages,
                hits_for=hits_for,
                dictionary=t.dict,
                scroll=frozenset(self._scroll),
                light=frozenset(c.name for c in cols if c.per_event and c.name not in self._heavy),
                needs={c.name: self._comps.get(c.name, ALL_COMPONENTS) for c in unique if c.name},
                ctes=tuple(ctes),
                others=len(fusion.others) if fusion else 0,
            )
            name = self.page.name("dr")
            if fusion is None:
                self.page.cur.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
                self._tables["day_rows"] = name
            else:
                # The visit columns' rows carry both (n0: this scope's rows in them); the event columns' fused
                # counts are rows of their own (v0 set, no components).
                sql = "\nUNION ALL BY NAME\n".join([sql, *fusion.event_counts(params, pages=use_pages)])
                self.page.cur.execute(f"CREATE TEMP TABLE {name}_all AS {sql}", params)
                comps = ", ".join(COMPONENT_NAMES)
                vs = ", ".join(f"coalesce(v{j}, 0) AS v{j}" for j in range(fusion.n))
                self.page.cur.execute(
                    f"CREATE TEMP VIEW {name} AS SELECT day, dimension, value, {comps} FROM {name}_all "
                    "WHERE n0 > 0 OR (n0 IS NULL AND v0 IS NULL)"
                )
                self.page.cur.execute(
                    f"CREATE TEMP VIEW {name}_fz AS SELECT day, dimension, value, {vs} FROM {name}_all "
                    "WHERE v0 IS NOT NULL"
                )
                self._tables["day_rows"], self._tables["fused"] = name, f"{name}_fz"
                self._fusion = fusion
        return self._tables["day_rows"]

    def slice_files(self) -> list[Path] | None:
        """The slices files (aggregator/slices.py) that answer every column asked of this scope's tables, or
        None: they do when every filter condition is on a cell dimension (browser, OS, device), over whole days
        whose slices are all built, for columns (and scroll depths) a slice holds."""
        if self.ts is not None or not self.raw_days or not slices.answerable(self.filters):
            return None
        found = [d.tables.get(SLICES_KIND) if d.tables is not None else None for d in self.raw_days]
        files = [f for f in found if f is not None]
        if len(files) != len(found):
            return None
        for a in self._need["tables"].values():
            if not slices.answers(a, ("" if a.time_bucket or not a.dimensions else a.column.name) in self._scroll):
                return None
        return files

    def _slice_names(self) -> dict[str, str]:
        names = {"": ""}
        for a in self._need["tables"].values():
            if a.dimensions and not a.time_bucket and a.rollup_name:
                names[a.rollup_name] = a.column.name
        return names

    def _slice_day_rows(self) -> bool:
        """Make the day rows from the days' slices, if they answer (see :meth:`slice_files`), together with
        those of the neighbours they answer over the same days that are not made yet: one read for all."""
        files = None if self._no_slices else self.slice_files()
        if files is None:
            return False
        group = [self] + [
            o for o in self.sliced_with if "day_rows" not in o._tables and not o._no_slices and o.slice_files() == files
        ]
        names: dict[str, str] = {}
        for s in group:
            names.update(s._slice_names())
        # Each scope sums only the components some request of it needs: a neighbour's visitors alone.
        needs = [frozenset().union(*(s._comps.get(n, ALL_COMPONENTS) for n in s._need["tables"])) for s in group]
        params: dict[str, object] = {}
        sql = slices.day_rows_sql_of(files, [(s.filters, n) for s, n in zip(group, needs, strict=True)], names, params)
        name = self.page.name("sl")
        cur = self.page.cur
        cur.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
        if cur.execute(f"SELECT 1 FROM {name} WHERE dimension = '{slices.INEXACT}' LIMIT 1").fetchone():
            cur.execute(f"DROP TABLE {name}")  # a day whose cells cannot be summed: the tables answer
            for s in group:
                s._no_slices = True
            return False
        for i, s in enumerate(group):
            comps = ", ".join(f"s{i}_{c} AS {c}" for c in COMPONENT_NAMES)
            view = f"SELECT day, dimension, value, {comps} FROM {name} WHERE n{i} > 0"
            cur.execute(f"CREATE TEMP VIEW {name}_{i} AS {view}")
            s._tables["day_rows"] = f"{name}_{i}"
        vs = ", ".join(f"coalesce(s{i}_visitors, 0) AS v{i}" for i in range(len(group)))
        cur.execute(f"CREATE TEMP VIEW {name}_v AS SELECT day, dimension, value, {vs} FROM {name}")
        self._sliced = (f"{name}_v", group)
        return True

    def hits_for(self, col: Column, params: dict[str, object]) -> str:
        """The hits relation a column reads: expanded to goals for the goal column."""
        if any(p.expr == "goal" for p in col.parts):
            return goal_hits(self, params)
        return self.matching_hits(params)

    def rollup_day_rows(self, a: Ask) -> str:
        """A temp table of the rollup rows (day, dimension, value, visitors) of this scope's days for ``a``.

        Made once for every column asked of the rollups that reads the same files (one copy, not one per
        column): each reader selects its dimension.
        """
        key = f"rollup_rows:{a.rollup_name}"
        if key not in self._tables:
            files, missing, _ = self.rollup_sources(a, raw_only=True)  # filtered neighbours have raw days only
            same = [b for b in [a, *self._need["rollup"].values()] if self.rollup_sources(b, raw_only=True)[:2]
                    == (files, missing) and f"rollup_rows:{b.rollup_name}" not in self._tables]  # fmt: skip
            name = self.page.name("rr")
            dims = sorted({b.rollup_name for b in same if b.rollup_name})
            self.page.store.copy_rows(self.page.cur, name, files, missing, dims)
            for b in same:
                self._tables[f"rollup_rows:{b.rollup_name}"] = name
        return self._tables[key]


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0
