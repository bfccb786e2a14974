"""Hits expanded to the goals they convert (Plausible's goal join), for a scope's goal column.

The functions take the scope as ``self`` (they were its methods). :func:`converting_codes` is shared with
the funnels (aggregator/funnels.py), whose steps are goals too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aggregator.dimensions import GOAL
from aggregator.filters import Filter, GoalLike, selected_goals
from aggregator.tables import same_codes_sql

if TYPE_CHECKING:
    from aggregator.scope import Scope


def goal_hits(self: Scope, params: dict[str, object], base: str | None = None) -> str:
    """The matching hits (or ``base``), each once per goal it converts (column ``goal``), as Plausible expands
    them. Under a filter on goals, only those goals; else every goal of the site.
    """
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
        names = self.page.name("goalname")
        self.page.cur.execute(
            f"CREATE TEMP TYPE {names} AS ENUM (SELECT DISTINCT unnest(CAST($names AS VARCHAR[])))",
            {"names": [g.name for g in chosen]},
        )
        labels = [f"CAST($gn{i} AS {names})" for i in range(len(chosen))]
        label_params: dict[str, object] = {f"gn{i}": g.name for i, g in enumerate(chosen)}
        self._tables[key] = converting_codes(self, chosen, "goal", labels, label_params)[0]
    return self._tables[key], self._tables[key].endswith("_any")


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
        if g.kind == "page":
            params[f"cre{i}"] = g.page_regex
            cond = f"dimension = 'event:page' AND regexp_full_match(value, CAST($cre{i} AS VARCHAR))"
        else:
            params[f"cev{i}"] = g.event
            cond = f"dimension = 'event:name' AND value = CAST($cev{i} AS VARCHAR)"
        parts.append(f"SELECT day, code, {g.kind == 'page'} AS page, {label} AS {column} FROM {d} WHERE {cond}")
    table = scope.page.name(f"{column}codes")
    scope.page.cur.execute(f"CREATE TEMP TABLE {table} AS {' UNION ALL '.join(parts)}", params)
    if scope.page.cur.execute(same_codes_sql(d)).fetchone() is not None:
        return table, False
    scope.page.cur.execute(f"CREATE TEMP TABLE {table}_any AS SELECT DISTINCT code, page, {column} FROM {table}")
    return f"{table}_any", True
