"""Hits expanded to the goals they convert (Plausible's goal join), for a scope's goal column.

The functions take the scope as ``self`` (they were its methods). :func:`converting_codes` and
:func:`conversion_rows` are shared with the funnels (aggregator/funnels.py), whose steps are goals too.

Unfiltered, the goal hits are the rows of the days' conversions tables (aggregator/conversions.py): built
with the per-visit tables for the goals in force, one row per (visit part, goal). A day whose files were
built for other goals, or not built, adds its goal hits as they are; a range where no day has them reads the
plain goal join.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aggregator.conversions import (
    HITS_ONLY,
    VKEY_SQL,
    GoalRows,
    codes_sql,
    dictionary_match,
    file_parts,
    goal_hex,
    goal_id,
    goal_set_key,
    props_sql,
)
from aggregator.dimensions import GOAL
from aggregator.filters import Filter, GoalLike, selected_goals
from aggregator.lake import sql_path
from aggregator.querybuild import part
from aggregator.tables import same_codes_sql

if TYPE_CHECKING:
    from aggregator.asks import DaySource
    from aggregator.scope import Scope


#: What a goal column may group by for the conversions rows to answer it: the goal and the day (they merge the
#: pages, names, hours and properties of a visit part's converting events, and keep no visit code).
_ROWS_PARTS = frozenset({"goal", part("time:day").expr})


def goal_hits(self: Scope, params: dict[str, object], base: str | None = None) -> str:
    """The matching hits (or ``base``), each once per goal it converts (column ``goal``), as Plausible expands
    them. Under a filter on goals, only those goals; else every goal of the site.
    """
    if base is None and self.goals and not self.filters:
        goal_cols = [a.column for a in self._need["tables"].values() if any(p.expr == "goal" for p in a.column.parts)]
        if all(p.expr in _ROWS_PARTS for c in goal_cols for p in c.parts):
            labels, label_params = _goal_labels(self, list(self.goals))
            rows = conversion_rows(self, self.goals, "goal", labels, params)
            if rows is not None:
                params.update(label_params)
                return rows
    base = base or self.matching_hits(params)
    chosen: list[GoalLike] = list(self.goals)
    named = [f for f in self.filters if isinstance(f, Filter) and f.dimension == GOAL]
    if named:
        chosen = [g for g in chosen if all(g in selected_goals(f, self.goals) for f in named)]
    if not chosen:
        return f"(SELECT *, NULL::VARCHAR AS goal FROM {base} WHERE false)"
    codes, dayless = _goal_codes(self, chosen)
    # Engagement events convert no goal (an event goal's name is never a built-in event's): left out before
    # the join, not after it.
    base = f"(SELECT * FROM {base} WHERE kind <> 1)"
    c = self.compiler(params)
    props = " OR ".join(
        f"(g.goal = {c._param(g.name)} AND {c.goal_props(g)})" for g in chosen if g.kind != "page" and g.props
    )
    plain = [g.name for g in chosen if g.kind == "page" or not g.props]  # goals kept without a property check
    if props:
        listed = f"list_contains(CAST({c._param(plain)} AS VARCHAR[]), g.goal) OR " if plain else ""
        props = f" WHERE {listed}{props}"
    # One hash join with the (day, code) pairs each goal converts (a page code for pageviews, a name code for
    # the other events), not a condition per goal.
    on_day = "" if dayless else "h.day = g.day AND "
    return f"""(SELECT h.*, g.goal FROM {base} h JOIN {codes} g
ON {on_day}g.page = (h.kind = 0) AND g.code = CASE WHEN h.kind = 0 THEN h.c_page ELSE h.c_name END
  {props})"""


def _goal_codes(self: Scope, chosen: list[GoalLike]) -> tuple[str, bool]:
    """:func:`converting_codes` of the chosen goals, column ``goal``, once per page.

    ``goal`` is an ENUM of the chosen goals' names (a temp type of this page's connection): the queries group
    converting hits by (day, goal, day key), and a one-byte key groups faster than the name's text (which
    is what it casts to, as a value).
    """
    key = "goal_codes:" + json.dumps([g.name for g in chosen])
    if key not in self._tables:
        labels, label_params = _goal_labels(self, chosen)
        self._tables[key] = converting_codes(self, chosen, "goal", labels, label_params)[0]
    return self._tables[key], self._tables[key].endswith("_any")


def _goal_labels(self: Scope, chosen: list[GoalLike]) -> tuple[list[str], dict[str, object]]:
    """SQL labels of the chosen goals: their names as values of an ENUM of them (a temp type of this page's
    connection, made once per goal list), and their parameters."""
    key = "goal_names:" + json.dumps([g.name for g in chosen])
    if key not in self._tables:
        names = self.page.name("goalname")
        self.page.cur.execute(
            f"CREATE TEMP TYPE {names} AS ENUM (SELECT DISTINCT unnest(CAST($names AS VARCHAR[])))",
            {"names": [g.name for g in chosen]},
        )
        self._tables[key] = names
    names = self._tables[key]
    # Names are bound as values and cast to the type when the statement runs, never pasted into SQL.
    prefix = f"{names}_"
    return [f"CAST(${prefix}{i} AS {names})" for i in range(len(chosen))], {
        f"{prefix}{i}": g.name for i, g in enumerate(chosen)
    }


def conversion_rows(
    scope: Scope, goals: Sequence[GoalLike], column: str, labels: Sequence[str], params: dict[str, object]
) -> GoalRows | None:
    """The unfiltered goal hits of the scope's days as conversions rows (aggregator/conversions.py), each
    once per goal of ``goals`` it converts, labelled ``labels[i]`` in ``column``; the parameters of its SQL
    are added to ``params`` (the labels' are the caller's). None under filters or datetime bounds (the rows
    merge what those read).

    Days whose conversions file was built for the goals in force are read from it (``merged`` true); the
    others (built for other goals, or not built: today) add their goal hits as they are (``merged`` false). When
    no day has such a file (a lake from before it existed, or goals changed since the last build) None: the
    plain goal join is as fast as this one can be then.
    """
    split = _coverage(scope)
    if split is None:
        return None
    covered, uncovered = split
    parts = [f"SELECT *, {HITS_ONLY}, true AS merged FROM read_parquet([{_files(covered, goals)}])"]
    if uncovered:  # their hits as they are (``merged`` false: grouped by day key where counted)
        parts.append(f"SELECT *, false AS merged FROM {_uncovered_hits(scope, uncovered, goals, params)}")
    mapping = " UNION ALL ".join(
        f"SELECT CAST({goal_id(g)} AS BIGINT) AS gdef, {label} AS {column}"
        for g, label in zip(goals, labels, strict=True)
    )
    union = " UNION ALL BY NAME ".join(f"({p})" for p in parts)
    return GoalRows(f"(SELECT r.* EXCLUDE (gdef), m.{column} FROM ({union}) r JOIN ({mapping}) m ON m.gdef = r.gdef)")


#: The columns of a funnel step's rows (aggregator/funnels.py).
STEP_COLUMNS = "vkey, day, day_key, vno, profile, key_rows, visit_rows, first_ts, last_ts, ts_more"


def conversion_steps(
    scope: Scope, steps: Sequence[GoalLike], params: dict[str, object]
) -> tuple[list[str], list[str]] | None:
    """(CTEs, one relation per step): the unfiltered rows (:data:`STEP_COLUMNS`, ``merged``) converting each
    step, read as :func:`conversion_rows` reads them; None when those cannot answer.

    Each step's rows are read from its goal's files only.
    """
    split = _coverage(scope)
    if split is None:
        return None
    covered, uncovered = split
    ctes = []
    if uncovered:
        hits = _uncovered_hits(scope, uncovered, steps, params)
        ctes.append(f"ue AS MATERIALIZED (SELECT *, {VKEY_SQL} AS vkey FROM {hits})")
    rels = []
    for g in steps:
        rel = f"SELECT {STEP_COLUMNS}, true AS merged FROM read_parquet([{_files(covered, [g])}])"
        if uncovered:
            rel += f" UNION ALL SELECT {STEP_COLUMNS}, false AS merged FROM ue WHERE gdef = {goal_id(g)}"
        rels.append(f"({rel})")
    return ctes, rels


def _coverage(scope: Scope) -> tuple[list[DaySource], list[DaySource]] | None:
    """The scope's days with a conversions file of every goal, built for the goals in force, and the others;
    None when no day has them, or under filters or datetime bounds."""
    if scope.filters or isinstance(scope.ts, tuple) or not scope.raw_days:
        return None
    want = goal_set_key(scope.goals)
    keys = {f"conv:{goal_hex(goal_id(g))}" for g in scope.goals}
    covered: list[DaySource] = []
    uncovered: list[DaySource] = []
    for d in scope.raw_days:
        tables = d.tables or {}
        files = [tables.get(k) for k in keys]
        ok = all(f is not None and (file_parts(f.name) or ("", "", ""))[1] == want for f in files)
        (covered if ok else uncovered).append(d)
    return (covered, uncovered) if covered else None


def _files(days: list[DaySource], goals: Sequence[GoalLike]) -> str:
    """The conversions files of ``goals`` on ``days`` (all covered), as a SQL list's items."""
    keys = sorted({f"conv:{goal_hex(goal_id(g))}" for g in goals})
    return ", ".join(sql_path(d.tables[k]) for d in days if d.tables is not None for k in keys)


def _uncovered_hits(scope: Scope, days: list[DaySource], goals: Sequence[GoalLike], params: dict[str, object]) -> str:
    """The hits of ``days`` converting ``goals``, with the goal's id (``gdef``): a row per hit and goal."""
    t = scope.coded()
    n = len(params)
    listed = ", ".join(f"$cd{n}_{i}" for i in range(len(days)))
    params.update({f"cd{n}_{i}": d.day for i, d in enumerate(days)})
    codes = codes_sql(t.dict, goals, params, f"cc{n}_")
    code = "CASE WHEN h.kind = 0 THEN h.c_page ELSE h.c_name END"
    return (
        f"(SELECT h.*, c.gdef FROM (SELECT * FROM {t.hits} WHERE kind <> 1 AND day IN ({listed})) h "
        f"JOIN ({codes}) c ON h.day = c.day AND c.page = (h.kind = 0) AND c.code = {code} "
        f"WHERE {props_sql(goals, params, f'cc{n}_')})"
    )


def converting_codes(
    scope: Scope, goals: Sequence[GoalLike], column: str, labels: Sequence[str], params: dict[str, object]
) -> tuple[str, bool]:
    """A temp table (day, code, page, ``column``): the page codes (pageviews) and event-name codes each goal
    converts, labelled by the SQL ``labels[i]`` (with ``params``); and whether it has no day column.

    A page pattern is matched once per distinct path of the day's dictionary, not once per pageview. When no
    code stands for two values on two days (tables.same_codes_sql), the table is (code, page, ``column``)
    only, and joins to hits by code alone: a few hundred rows, not one per day and code.
    """
    params = dict(params)
    d = scope.coded().dict
    parts = []
    for i, (g, label) in enumerate(zip(goals, labels, strict=True)):
        cond = dictionary_match(g, params, f"c{i}")
        parts.append(f"SELECT day, code, {g.kind == 'page'} AS page, {label} AS {column} FROM {d} WHERE {cond}")
    table = scope.page.name(f"{column}codes")
    scope.page.cur.execute(f"CREATE TEMP TABLE {table} AS {' UNION ALL '.join(parts)}", params)
    if scope.page.cur.execute(same_codes_sql(d)).fetchone() is not None:
        return table, False
    scope.page.cur.execute(f"CREATE TEMP TABLE {table}_any AS SELECT DISTINCT code, page, {column} FROM {table}")
    return f"{table}_any", True
