"""The counts the privacy rules ask for beyond a request's own rows (aggregator/kanon.py's Probe), in SQL.

Profiles and the exact ``(other)`` are read from the per-visit table (visit
columns) or from the events (event columns, scroll depth), over the raw days
of the range; a neighbour's differences from the two scopes' day rows.
"""

from __future__ import annotations

import json
from typing import Any

from aggregator.kanon import Agg, Diff, Key
from aggregator.metrics import Components
from aggregator.querybuild import day_rows_sql, sums_sql
from aggregator.scope import Ask, Mode, Scope
from aggregator.sessions import PROFILE_SQL, visits_sql


def key_of(a: Ask, value: str) -> Key:
    if not a.dimensions:
        return ()
    if len(a.dimensions) > 1:
        return tuple(str(v) for v in json.loads(value))
    return (value,)


class ScopeProbe:
    def __init__(self, scope: Scope, a: Ask, mode: Mode, neighbours: list[tuple[Scope, Mode]], scroll: bool) -> None:
        self.scope, self.a, self.mode, self._neighbours, self.scroll = scope, a, mode, neighbours, scroll
        self.neighbours = len(neighbours)
        self._diffs: dict[int, dict[Key, Diff]] = {}
        self._purged: dict[Key, Agg] | None = None

    @property
    def _col(self) -> str:
        return f"CAST({self.a.column.sql} AS VARCHAR)"

    def _values(self, keys: list[Key]) -> list[str]:
        return [self.scope.value_of(self.a, self.mode, k) for k in keys]

    def _visit_based(self) -> bool:
        """Whether the per-visit table alone holds what this column and the scope's filters need."""
        return not self.a.column.per_event and self.mode != "rows"

    # --- profiles ------------------------------------------------------------------------------------------

    def profiles(self, keys: list[Key]) -> dict[Key, int]:
        if not self.scope.raw_days:
            return {}
        params: dict[str, Any] = {"vals": self._values(keys)}
        if self._visit_based():
            rel, counted, where = self.scope.visits(), "n_ev > 0", self.scope.condition(params)
        elif self.mode == "rows":
            rel, counted, where = self.scope.rows(), "name <> 'engagement'", "true"
        else:  # unfiltered event column: the raw events hold the page, the name and the profile
            rel, counted, where = self.scope.events(), "name <> 'engagement'", "true"
        sql = f"""SELECT value, count(DISTINCT profile) FROM (
  SELECT {self._col} AS value, {PROFILE_SQL} AS profile FROM {rel} WHERE {counted} AND ({where})
) WHERE list_contains(CAST($vals AS VARCHAR[]), value) GROUP BY value"""
        return {key_of(self.a, str(v)): int(n) for v, n in self.scope.page.cur.execute(sql, params).fetchall()}

    # --- neighbours ----------------------------------------------------------------------------------------

    def _day_rel(self, scope: Scope, mode: Mode) -> str:
        a = self.a
        value = a.column.sql if a.time_bucket else "value"
        if mode == "rollup":
            table, name = scope.rollup_day_rows(a), a.rollup_name
        else:
            table, name = scope.day_rows(mode), a.column.name
        dim = "" if (a.time_bucket or not a.dimensions) else name
        return f"(SELECT day, CAST({value} AS VARCHAR) AS value, visitors FROM {table} WHERE dimension = '{dim}')"

    def diffs(self, neighbour: int) -> dict[Key, Diff]:
        if neighbour not in self._diffs:
            other, mode = self._neighbours[neighbour]
            if not self.scope.raw_days:
                self._diffs[neighbour] = {}
                return {}
            d = "abs(coalesce(f.visitors, 0) - coalesce(g.visitors, 0))"
            sql = f"""SELECT coalesce(f.value, g.value), sum({d}), max({d})
FROM {self._day_rel(self.scope, self.mode)} f FULL JOIN {self._day_rel(other, mode)} g
  ON f.day = g.day AND f.value = g.value
GROUP BY 1"""
            rows = self.scope.page.cur.execute(sql).fetchall()
            self._diffs[neighbour] = {key_of(self.a, str(v)): Diff(int(t), int(m)) for v, t, m in rows}
        return self._diffs[neighbour]

    def diff_profiles(self, neighbour: int, keys: list[Key]) -> dict[Key, int]:
        """Distinct profiles of the visitors a row gains or loses against a neighbour."""
        other, _ = self._neighbours[neighbour]
        params: dict[str, Any] = {"vals": self._values(keys)}
        f, g = self.scope.condition(params), other.condition(params)
        if not self.a.column.per_event and self.scope.visit_level and other.visit_level:
            rel, counted = self.scope.visits(), "n_ev > 0"
        else:
            rel, counted = self.scope.joined(), "name <> 'engagement'"
        sql = f"""SELECT value, count(DISTINCT p) FROM (
  SELECT value, unnest(ps) AS p FROM (
    SELECT day, day_key, {self._col} AS value, list(DISTINCT {PROFILE_SQL}) AS ps,
           bool_or({f}) AS in_f, bool_or({g}) AS in_g
    FROM {rel} WHERE {counted} AND (({f}) OR ({g})) GROUP BY day, day_key, value
  ) WHERE in_f <> in_g AND list_contains(CAST($vals AS VARCHAR[]), value)
) GROUP BY value"""
        return {key_of(self.a, str(v)): int(n) for v, n in self.scope.page.cur.execute(sql, params).fetchall()}

    # --- (other) -------------------------------------------------------------------------------------------

    def other(self, folded: list[Key]) -> tuple[Agg, int] | None:
        """The union of the folded rows, counted again (exact distinct visitors), and its distinct profiles."""
        agg, profiles = Agg(Components(), 0), 0
        scope, cur = self.scope, self.scope.page.cur
        if scope.raw_days:
            params: dict[str, Any] = {"vals": self._values(folded)}
            member = f"list_contains(CAST($vals AS VARCHAR[]), {self._col})"
            if self._visit_based():
                rel = scope.page.name("ovis")
                cur.execute(
                    f"CREATE TEMP TABLE {rel} AS SELECT * FROM {scope.visits()} "
                    f"WHERE ({scope.condition(params)}) AND {member}",
                    params,
                )
                params = {}
                sql = day_rows_sql([], params, visits=rel, rows=None, scroll=False)
                counted = "n_ev > 0"
            else:
                base = scope.rows() if self.mode == "rows" else scope.joined()
                rel = scope.page.name("orows")
                cur.execute(f"CREATE TEMP TABLE {rel} AS SELECT * FROM {base} WHERE {member}", params)
                vis = scope.page.name("ovis")
                cur.execute(f"CREATE TEMP TABLE {vis} AS {visits_sql(rel)}")
                params = {}
                sql = day_rows_sql([], params, visits=vis, rows=rel, scroll=self.scroll)
                counted = "name <> 'engagement'"
            table = scope.page.name("oday")
            cur.execute(f"CREATE TEMP TABLE {table} AS {sql}", params)
            for r in cur.execute(sums_sql(table)).fetchall():
                agg.comps.add(Components.from_row(tuple(r[3:-1])))
                agg.max_daily = max(agg.max_daily, int(r[-1] or 0))
            row = cur.execute(f"SELECT count(DISTINCT {PROFILE_SQL}) FROM {rel} WHERE {counted}").fetchone()
            profiles = int(row[0]) if row else 0
        # Days whose raw events are purged have only their rollups: their folded rows are added as they are
        # (an upper bound on distinct visitors) and count for the daily maximum only.
        for key in folded:
            part = self._purged_groups().get(key)
            if part is not None:
                agg.comps.add(part.comps)
                agg.max_daily = max(agg.max_daily, part.max_daily)
        return agg, profiles

    def _purged_groups(self) -> dict[Key, Agg]:
        if self._purged is None:
            self._purged = self.scope.purged_groups(self.a) if self.mode == "rollup" else {}
        return self._purged
