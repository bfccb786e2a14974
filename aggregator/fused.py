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


class Fusion:
    """The leaf booleans and memberships of a scope and its fused neighbours, over any coded table's rows."""

    def __init__(self, scope: Scope, others: list[Scope]) -> None:
        self.scope, self.others = scope, others
        self.dictionary = scope.coded().dict
        scopes = [scope, *others]
        self.names: dict[Filter, str] = {}
        for s in scopes:
            for f in s.filters:
                for leaf in leaves(f):
                    for v in leaf.values:
                        self.names.setdefault(_single(NEGATED.get(leaf.op, leaf.op), leaf, v), f"l{len(self.names)}")
        members = _Members({}, self.dictionary, self.names)  # the membership expressions have no parameters
        self.m_sel = ", ".join(f"coalesce({members.all(s.filters)}, false) AS m{j}" for j, s in enumerate(scopes))
        self.m_any = " OR ".join(f"m{j}" for j in range(len(scopes)))
        self.n = len(scopes)
        cols = _columns(scope)
        codes = sorted({p.expr for c in cols if not c.per_event for p in c.parts if p.dimension})
        self.codes = "".join(f", {c}" for c in codes)

    def rows(self, relation: str, counted: str, params: dict[str, object], read: str) -> str:
        """``relation``'s rows some scope holds (and ``counted``), with ``read`` and memberships ``m0``, ``m1``, …:
        the booleans once per row, then each scope's membership from them."""
        real = Compiler(params, self.dictionary, prefix="fz", goals=self.scope.goals)
        booleans = "".join(f", ({real.leaf(f)}) AS {n}" for f, n in self.names.items())
        return f"""(SELECT * FROM (SELECT {read}, {self.m_sel} FROM (
      SELECT {read}{booleans} FROM {relation} WHERE {counted})) WHERE {self.m_any})"""

    def visits_sql(self) -> tuple[str, dict[str, object]]:
        """The fused visits the profiles of a difference are counted from (aggregator/probe.py): the counted
        visit rows any scope holds, with their codes, profile and memberships (a statement of its own)."""
        params: dict[str, object] = {}
        read = f"day, day_key, key_rows, profile{self.codes}"
        return self.rows(self.scope.coded().visits, "n_ev > 0", params, read), params

    def ctes(self, params: dict[str, object], *, pages: bool) -> list[str]:
        """The CTEs of the scope's one statement: ``fzv``, the visit rows any scope holds (the scope's
        components and every scope's visitors of every visit column are counted from it), and ``fzp``, the
        same of the pages (``pages``: the page column or scroll depth is asked)."""
        t = self.scope.coded()
        # Only what the components read (each column is a copy, in memory, for this statement).
        read = f"day, day_key, vno, n_pv, n_ev, eng, is_bounce, v_dur, key_rows{self.codes}"
        out = [f"fzv AS MATERIALIZED {self.rows(t.visits, 'true', params, read)}"]
        if pages:
            read = f"day, day_key, vno, c_page, n_pv, n_ev, eng, scroll, is_bounce, v_dur, key_rows{self.codes}"
            out.append(f"fzp AS MATERIALIZED {self.rows(t.pages, 'true', params, read)}")
        return out

    def event_counts(self, params: dict[str, object], *, pages: bool) -> list[str]:
        """Every scope's visitors of the event columns: rows ``(day, dimension, value, v0, v1, …)``, the page
        column from ``fzp`` (``pages``), the others from the hits."""
        t = self.scope.coded()
        parts = []
        for i, col in enumerate(c for c in _columns(self.scope) if c.per_event):
            params[f"fzc{i}"] = col.name
            if pages and all(p.expr == "c_page" for p in col.parts):
                coded = _counts(col, "(SELECT * FROM fzp WHERE n_ev > 0)", self.n, single_rows=True)
            else:
                rows = self.rows(t.hits, "kind <> 1 AND n > 0", params, "*")
                coded = _counts(col, rows, self.n, single_rows=False)
            joins, value = value_sql(col, t.dict)
            vs = "".join(f", c.v{j}" for j in range(self.n))
            parts.append(
                f"SELECT c.day, CAST($fzc{i} AS VARCHAR) AS dimension, {value} AS value{vs} FROM ({coded}) c{joins}"
            )
        return parts


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
