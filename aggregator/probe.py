"""The counts the privacy rules ask for beyond a request's own rows (aggregator/kanon.py's Probe), in SQL.

Profiles and the exact ``(other)`` are read from the coded tables (the visits
for visit columns, the hits for event columns and scroll depth) over the raw
days of the range; a neighbour's differences from the two scopes' day rows.
"""

from __future__ import annotations

import json
from typing import Any

from aggregator.asks import Ask
from aggregator.goalscope import goal_hits
from aggregator.kanon import Agg, Diff, Key
from aggregator.metrics import Components
from aggregator.neighbours import counted_visits, neighbour_diffs
from aggregator.querybuild import TOTAL, day_rows_sql, sums_sql, valued_sql, visits_from_hits_sql
from aggregator.relations import Mode
from aggregator.scope import Scope


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

    def _values(self, keys: list[Key]) -> list[str]:
        return [self.scope.value_of(self.a, self.mode, k) for k in keys]

    def _on_hits(self) -> bool:
        return self.a.column.per_event or self.scroll or not self.scope.visit_level

    def _base(self, params: dict[str, Any]) -> tuple[str, str]:
        """(relation, condition that makes a row count as a visit): what this scope's rows of the column are."""
        if self._on_hits():
            return self.scope.hits_for(self.a.column, params), "kind <> 1"
        return self.scope.matching_visits(), "n_ev > 0"

    # --- profiles ------------------------------------------------------------------------------------------

    def profiles(self, keys: list[Key]) -> dict[Key, int]:
        if not self.scope.raw_days:
            return {}
        params: dict[str, Any] = {"vals": self._values(keys)}
        rel, counted = self._base(params) if self._on_hits() else counted_visits(self.scope)
        valued = valued_sql(self.a.column, rel, self.scope.coded().dict)
        sql = f"""SELECT value, count(DISTINCT profile) FROM {valued}
WHERE {counted} AND list_contains(CAST($vals AS VARCHAR[]), value) GROUP BY value"""
        return {key_of(self.a, str(v)): int(n) for v, n in self.scope.page.cur.execute(sql, params).fetchall()}

    # --- neighbours ----------------------------------------------------------------------------------------

    def _value_dim(self, mode: Mode) -> tuple[str, str | None]:
        a = self.a
        if a.time_bucket or not a.dimensions:  # buckets of the day totals
            return (a.column.parts[0].expr if a.time_bucket else "''"), ""
        return "value", (a.rollup_name if mode == "rollup" else a.column.name)

    def _day_rel(self, scope: Scope, mode: Mode) -> str:
        value, dim = self._value_dim(mode)
        table = scope.rollup_day_rows(self.a) if mode == "rollup" else scope.day_rows()
        return f"(SELECT day, CAST({value} AS VARCHAR) AS value, visitors FROM {table} WHERE dimension = '{dim}')"

    def diffs(self, neighbour: int) -> dict[Key, Diff]:
        if neighbour not in self._diffs:
            other, mode = self._neighbours[neighbour]
            if not self.scope.raw_days:
                self._diffs[neighbour] = {}
                return {}
            if self.mode == "tables":  # every column against this neighbour in one statement (fused or not)
                rows = neighbour_diffs(self.scope, other, self.a)
            else:
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
        t = self.scope.coded()
        on_visits = not self.a.column.per_event and self.scope.visit_level and other.visit_level
        fused = self.scope.fused(other) if on_visits else None
        if fused is not None:  # the fused visits: counted visits of any of the scopes, memberships m0, m1, …
            f, g = "m0", f"m{fused[1]}"
        else:
            f, g = self.scope.condition(params), other.condition(params)
        if fused is not None:
            rel, counted = self.scope.fused_visits(), "true"
        elif on_visits:
            rel, counted = t.visits, "n_ev > 0"
        elif any(p.expr == "goal" for p in self.a.column.parts):
            rel, counted = goal_hits(self.scope, params, base=t.hits), "kind <> 1"
        else:
            rel, counted = t.hits, "kind <> 1"
        valued = valued_sql(self.a.column, rel, t.dict)
        sql = f"""SELECT value, count(DISTINCT p) FROM (
  SELECT value, unnest(ps) AS p FROM (
    SELECT day, day_key, value, list(DISTINCT profile) AS ps, bool_or({f}) AS in_f, bool_or({g}) AS in_g
    FROM {valued} WHERE {counted} AND (({f}) OR ({g})) AND list_contains(CAST($vals AS VARCHAR[]), value)
    GROUP BY day, day_key, value
  ) WHERE in_f <> in_g
) GROUP BY value"""
        return {key_of(self.a, str(v)): int(n) for v, n in self.scope.page.cur.execute(sql, params).fetchall()}

    # --- (other) -------------------------------------------------------------------------------------------

    def other(self, folded: list[Key]) -> tuple[Agg, int] | None:
        """The union of the folded rows, counted again (exact distinct visitors), and its distinct profiles."""
        agg, profiles = Agg(Components(), 0), 0
        scope, cur = self.scope, self.scope.page.cur
        if scope.raw_days:
            t = scope.coded()
            params: dict[str, Any] = {"vals": self._values(folded)}
            rel, counted = self._base(params)
            union = scope.page.name("other")
            cur.execute(
                f"CREATE TEMP TABLE {union} AS SELECT * FROM {valued_sql(self.a.column, rel, t.dict)} "
                "WHERE list_contains(CAST($vals AS VARCHAR[]), value)",
                params,
            )
            # The union's visits, day rows and their sums in one statement (each temp table is a write).
            params = {}
            if self._on_hits():
                ctes = (f"ovis AS MATERIALIZED {visits_from_hits_sql(union, ())}",)
                rows = day_rows_sql(
                    [TOTAL], params, visits="ovis", hits=union, dictionary=t.dict, scroll=self.scroll, ctes=ctes
                )
            else:
                rows = day_rows_sql([TOTAL], params, visits=union, hits=None, dictionary=t.dict, scroll=False)
            for r in cur.execute(sums_sql(f"({rows})"), params).fetchall():
                agg.comps.add(Components.from_row(tuple(r[3:-1])))
                agg.max_daily = max(agg.max_daily, int(r[-1] or 0))
            row = cur.execute(f"SELECT count(DISTINCT profile) FROM {union} WHERE {counted}").fetchone()
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
