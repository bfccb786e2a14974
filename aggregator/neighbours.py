"""What a filtered answer's rows gain or lose against each neighbouring filter set, for every column at once.

The differencing defence (aggregator/kanon.py) compares each column of a filtered scope with each of its
neighbours, by visitors per (day, value). One statement per neighbour answers every column asked of the
scope (the day rows of both, or one relation of both scopes' visitors when the neighbour is counted in the
scope's own pass, aggregator/fused.py, or read with it from the slices, aggregator/slices.py), instead of one
per column and neighbour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.asks import Ask
    from aggregator.relations import Mode
    from aggregator.scope import Scope


def neighbour_diffs(scope: Scope, other: Scope, a: Ask) -> list[tuple[str, int, int]]:
    """What each row of ``a`` gains or loses against a neighbour: (value, visitors in all, most on one day),
    for every column asked of the scope at once (one statement, not one per column): from the fused day rows
    when the neighbour is counted in the scope's pass, else from both scopes' day rows."""
    cache = scope.diff_cache.setdefault(id(other), {})
    if a.column.name not in cache:
        asks = [a, *(b for b in scope.tables_asks() if b.column.name not in cache and b.column.name != a.column.name)]
        params: dict[str, object] = {}
        fused = scope.fused(other) or scope.slice_fused(other)
        if fused is not None:  # one row per (day, value) with both scopes' visitors
            table, j = fused
            rows = " UNION ALL ".join(_day_values(scope, b, "tables", i, params, table) for i, b in enumerate(asks))
            sql = f"SELECT k, value, sum(abs(v0 - v{j})), max(abs(v0 - v{j})) FROM ({rows}) GROUP BY 1, 2"
        else:
            f = " UNION ALL ".join(_day_values(scope, b, "tables", i, params) for i, b in enumerate(asks))
            g = " UNION ALL ".join(_day_values(other, b, other.mode(b), i, params) for i, b in enumerate(asks))
            d = "abs(coalesce(f.visitors, 0) - coalesce(g.visitors, 0))"
            sql = f"""SELECT coalesce(f.k, g.k), coalesce(f.value, g.value), sum({d}), max({d})
FROM ({f}) f FULL JOIN ({g}) g ON f.k = g.k AND f.day = g.day AND f.value = g.value
GROUP BY 1, 2"""
        for b in asks:
            cache[b.column.name] = []
        for k, value, total, most in scope.page.cur.execute(sql, params).fetchall():
            cache[asks[k].column.name].append((str(value), int(total), int(most)))
    return cache[a.column.name]


def _day_values(scope: Scope, a: Ask, mode: Mode, k: int, params: dict[str, object], fused: str = "") -> str:
    """This scope's rows of ``a`` as (k, day, value, visitors): a time bucket's value from its day
    (``fused``: the fused day rows, with every scope's visitors instead)."""
    if a.time_bucket or not a.dimensions:  # buckets of the day totals
        value, dim = (a.column.parts[0].expr if a.time_bucket else "''"), ""
    else:
        value, dim = "value", ((a.rollup_name or "") if mode == "rollup" else a.column.name)
    table = fused or (scope.rollup_day_rows(a) if mode == "rollup" else scope.day_rows())
    params[f"dd{k}"] = dim
    counts = "* EXCLUDE (day, dimension, value)" if fused else "visitors"
    return (
        f"SELECT {k} AS k, day, CAST({value} AS VARCHAR) AS value, {counts} FROM {table} "
        f"WHERE dimension = CAST($dd{k} AS VARCHAR)"
    )


def counted_visits(scope: Scope) -> tuple[str, str]:
    """(relation, condition) of the visit rows this scope counts, with their codes and profile: the fused
    visits when its neighbours are counted with it (made once for both), else the matching visits."""
    if scope.fused_with and scope.fused(scope.fused_with[0]) is not None:
        return f"(SELECT * FROM {scope.fused_visits()} WHERE m0)", "true"
    return scope.matching_visits(), "n_ev > 0"
