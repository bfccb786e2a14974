"""A filtered scope and its neighbours' visitors in one pass (the differencing defence's cost, fused).

Every filtered answer is also answered under each neighbouring filter set
(aggregator/kanon.py: "Neighbours"), and the neighbours are compared by their
visitors only. Computing each neighbour as a scope of its own costs one pass
over the matching visits per neighbour (two filters: three passes). Here the
scope and all its neighbours in tables mode are counted together:

1. every distinct leaf value is evaluated once per row as a boolean column
   (a multi-value leaf as one boolean per value: its neighbours drop one
   value), and each scope's membership is derived from those booleans;
2. every column's visitors of every scope come from one GROUP BY per column
   with ``FILTER (WHERE in_scope_j)`` aggregates, all columns in one statement.

Visitors are counted exactly as :mod:`aggregator.querybuild` counts them (a
day key with a counted event in the row's group; key_rows = 1 rows are one
day key each), so each neighbour's figures equal those of its own scope.

Only visit-level filters are fused (their scopes read the per-visit table);
a scope under an event filter, or a page asking the goal column, keeps one
scope per neighbour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.filters import NEGATED, Compiler, Filter, leaves
from aggregator.querybuild import TOTAL, Column, value_sql

if TYPE_CHECKING:
    from aggregator.scope import Scope


class _Members(Compiler):
    """A scope's filters as an expression over the leaf-value booleans ``l0, l1, …`` of one fused row."""

    def __init__(self, params: dict[str, object], dictionary: str, names: dict[Filter, str]) -> None:
        super().__init__(params, dictionary)
        self.names = names

    def leaf(self, f: Filter) -> str:
        positive = NEGATED.get(f.op, f.op)
        one = " OR ".join(self.names[_single(positive, f, v)] for v in f.values)
        return f"NOT ({one})" if f.op in NEGATED else f"({one})"


def _single(positive: str, f: Filter, value: str) -> Filter:
    return Filter(positive, f.dimension, (value,), f.case_sensitive)


def fusable(scope: Scope, others: list[Scope]) -> bool:
    """Whether the scope and these neighbours can be counted in one pass."""
    cols = [a.column for a in scope.tables_asks()]
    return (
        bool(others)
        and bool(scope.raw_days)
        and scope.visit_level
        and all(o.visit_level for o in others)
        and not any(p.expr == "goal" for c in cols for p in c.parts)
    )


def fused_sql(scope: Scope, others: list[Scope], fv: str) -> tuple[tuple[str, dict[str, object]], ...]:
    """Two statements (SQL, parameters): the fused visits, to be materialized as ``fv``; then the day rows
    ``(day, dimension, value, v0, v1, …)`` of every column, ``v0`` the scope's visitors, ``v{j+1}`` those of
    ``others[j]``.
    """
    t = scope.coded()
    scopes = [scope, *others]
    names: dict[Filter, str] = {}
    for s in scopes:
        for f in s.filters:
            for leaf in leaves(f):
                for v in leaf.values:
                    names.setdefault(_single(NEGATED.get(leaf.op, leaf.op), leaf, v), f"l{len(names)}")

    def booleans(params: dict[str, object]) -> str:
        real = Compiler(params, t.dict, prefix="fz", goals=scope.goals)
        return "".join(f", ({real.leaf(f)}) AS {n}" for f, n in names.items())

    members = _Members({}, t.dict, names)  # the membership expressions have no parameters of their own
    m_sel = ", ".join(f"coalesce({members.all(s.filters)}, false) AS m{j}" for j, s in enumerate(scopes))
    m_any = " OR ".join(f"m{j}" for j in range(len(scopes)))
    cols = _columns(scope)
    codes = sorted({p.expr for c in cols if not c.per_event for p in c.parts if p.dimension})
    code_sel = "".join(f", {c}" for c in codes)

    def rows(relation: str, counted: str, params: dict[str, object], read: str = "*") -> str:
        # The booleans once per row, then each scope's membership; only rows some scope counts are kept.
        return f"""(SELECT * FROM (SELECT {read}, {m_sel} FROM (
      SELECT {read}{booleans(params)} FROM {relation} WHERE {counted})) WHERE {m_any})"""

    v_params: dict[str, object] = {}
    # The profile too: the profiles of what a row gains or loses against a neighbour are counted from here.
    visits = rows(t.visits, "n_ev > 0", v_params, read=f"day, day_key, key_rows, profile{code_sel}")
    params: dict[str, object] = {}
    parts = []
    for i, col in enumerate(cols):
        params[f"fzc{i}"] = col.name
        if not col.per_event:
            coded = _counts(col, fv, len(scopes), single_rows=True)
        elif all(p.expr == "c_page" for p in col.parts) and scope.pages_usable():
            coded = _counts(col, rows(t.pages, "n_ev > 0", params), len(scopes), single_rows=True)
        else:
            coded = _counts(col, rows(t.hits, "kind <> 1 AND n > 0", params), len(scopes), single_rows=False)
        joins, value = value_sql(col, t.dict)
        vs = "".join(f", c.v{j}" for j in range(len(scopes)))
        parts.append(
            f"SELECT c.day, CAST($fzc{i} AS VARCHAR) AS dimension, {value} AS value{vs} FROM ({coded}) c{joins}"
        )
    return (visits, v_params), ("\nUNION ALL\n".join(parts), params)


def _columns(scope: Scope) -> list[Column]:
    asked = [a.column for a in scope.tables_asks() if a.dimensions and not a.time_bucket]
    return list({c.name: c for c in [TOTAL, *asked]}.values())


def _counts(col: Column, relation: str, n: int, *, single_rows: bool) -> str:
    """Per (day, group): each scope's visitors (day keys with a counted row in the group and the scope).

    ``single_rows``: rows of a day key with one visit row (key_rows = 1) are one day key each and one row per
    group (the per-visit and pages tables), counted without grouping by day key.
    """
    sel = "".join(f", {p.expr} AS g{i}" for i, p in enumerate(col.parts))
    g = "".join(f", g{i}" for i in range(len(col.parts)))
    per_key = f"""SELECT day{g}, {", ".join(f"count(*) FILTER (WHERE b{j}) AS v{j}" for j in range(n))} FROM (
        SELECT day{g}, day_key, {", ".join(f"bool_or(m{j}) AS b{j}" for j in range(n))}
        FROM (SELECT day, day_key{sel}, {", ".join(f"m{j}" for j in range(n))} FROM {relation} WHERE_KEYS)
        GROUP BY day{g}, day_key
      ) GROUP BY day{g}"""
    if not single_rows:
        return per_key.replace("WHERE_KEYS", "")
    one = ", ".join(f"count(*) FILTER (WHERE m{j}) AS v{j}" for j in range(n))
    sums = ", ".join(f"sum(v{j}) AS v{j}" for j in range(n))
    return f"""SELECT day{g}, {sums} FROM (
      SELECT day{g}, {one} FROM (SELECT day{sel}, {", ".join(f"m{j}" for j in range(n))} FROM {relation}
        WHERE key_rows = 1) GROUP BY day{g}
      UNION ALL
      {per_key.replace("WHERE_KEYS", "WHERE key_rows > 1")}
    ) GROUP BY day{g}"""
