"""Filters: a small expression tree (leaves, and / or / not), its SQL, and its neighbours.

A request's ``filters`` are a tuple of expressions that must all hold (an
implicit ``and``). A leaf compares one dimension's value with a list of
values (``is`` / ``is_not``: equal to any; ``contains`` / ``contains_not``: a
substring; ``matches`` / ``matches_not``: an RE2 regular expression, so no
pattern can make matching slow), optionally ignoring case.

Semantics are per event, as in Plausible: an event matches when its own value
(event dimensions) or its visit's value (visit dimensions) does, and an answer
counts the matching events, the visits and visitors that have one.

**Neighbours** (PRIVACY.md rule 5, differencing): the expressions one step
away from a filter — one leaf, or one value of a leaf, taken away. Comparing
an answer with a neighbour's is how an attacker isolates a small group (`is_not
Opera` against no filter, `A and B` against `A`); the query layer checks that
no such difference is a group under K (aggregator/kanon.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import re2

from aggregator.dimensions import GOAL, PROPS, dimension

Operator = Literal["is", "is_not", "contains", "contains_not", "matches", "matches_not"]
FILTER_OPS: tuple[Operator, ...] = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
NEGATED = {"is_not": "is", "contains_not": "contains", "matches_not": "matches"}

MAX_VALUES = 20  # values in one leaf
MAX_LEAVES = 10  # leaves in all filters of a request
MAX_DEPTH = 5
MAX_PATTERN = 256  # characters of one regular expression or substring
MAX_VALUE = 1000  # characters of one compared value


class FilterError(ValueError):
    """A filter the query layer cannot run (the request layer turns it into a QueryError)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A leaf: ``op`` on ``dimension`` against ``values`` (any one of them)."""

    op: str
    dimension: str
    values: tuple[str, ...]
    case_sensitive: bool = True


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Expr


Expr = Filter | And | Or | Not


def leaves(expr: Expr) -> list[Filter]:
    if isinstance(expr, Filter):
        return [expr]
    if isinstance(expr, Not):
        return leaves(expr.child)
    return [leaf for c in expr.children for leaf in leaves(c)]


def depth(expr: Expr) -> int:
    if isinstance(expr, Filter):
        return 1
    if isinstance(expr, Not):
        return 1 + depth(expr.child)
    return 1 + max((depth(c) for c in expr.children), default=0)


def validate(filters: tuple[Expr, ...]) -> None:
    """Raise :class:`FilterError` for anything the SQL below would not run exactly and cheaply."""
    all_leaves = [leaf for f in filters for leaf in leaves(f)]
    if len(all_leaves) > MAX_LEAVES:
        raise FilterError(f"at most {MAX_LEAVES} filter conditions in all")
    for f in filters:
        if not isinstance(f, Filter) and any(leaf.dimension == GOAL for leaf in leaves(f)):
            raise FilterError("Invalid filters. Dimension `event:goal` can only be filtered at the top level.")
        if depth(f) > MAX_DEPTH:
            raise FilterError(f"filters may nest at most {MAX_DEPTH} levels deep")
        _check_groups(f)
    for leaf in all_leaves:
        dim = dimension(leaf.dimension)
        if leaf.op not in FILTER_OPS:
            raise FilterError(f"unknown filter operator {leaf.op!r}")
        if dim is None or dim.internal:
            raise FilterError(f"unknown dimension {leaf.dimension!r} in filter")
        if leaf.dimension.startswith("time:"):
            raise FilterError(f"cannot filter by {leaf.dimension!r}: use date_range")
        if leaf.dimension == GOAL and leaf.op not in ("is", "contains"):
            raise FilterError("event:goal can only be filtered with is or contains")
        if not leaf.values:
            raise FilterError(f"filter on {leaf.dimension!r} has no values")
        if len(leaf.values) > MAX_VALUES:
            raise FilterError(f"filter on {leaf.dimension!r}: at most {MAX_VALUES} values")
        for value in leaf.values:
            limit = MAX_PATTERN if leaf.op not in ("is", "is_not") else MAX_VALUE
            if len(value) > limit:
                raise FilterError(f"filter on {leaf.dimension!r}: a value is longer than {limit} characters")
            if leaf.op in ("matches", "matches_not"):
                _check_pattern(leaf.dimension, value)


def _check_groups(expr: Expr) -> None:
    if isinstance(expr, And | Or):
        if not expr.children:
            raise FilterError("an and/or filter needs at least one filter inside")
        for c in expr.children:
            _check_groups(c)
    elif isinstance(expr, Not):
        _check_groups(expr.child)


def _check_pattern(dimension: str, pattern: str) -> None:
    # DuckDB matches with RE2 too: a pattern RE2 accepts runs in linear time, whatever the input.
    try:
        re2.compile(pattern)
    except re2.error:
        raise FilterError(f"filter on {dimension!r}: invalid regular expression") from None


def _per_event(name: str) -> bool:
    d = dimension(name)
    return d is None or d.per_event


def is_visit_level(expr: Expr) -> bool:
    """Whether every leaf is about a visit (answerable from the per-visit table alone)."""
    return all(not _per_event(leaf.dimension) for leaf in leaves(expr))


# --- SQL -------------------------------------------------------------------------------------------------


class Compiler:
    """Filter expressions as SQL conditions over the coded tables, their values as named parameters.

    A leaf on a dimension is evaluated on the day's dictionary (a few thousand
    values at most), not on every row: a row matches when its code is one of
    the codes whose value matches, ``(day, c_x) IN (SELECT day, code FROM dict
    WHERE …)``. So a pattern or substring test runs once per distinct value.
    """

    def __init__(
        self, params: dict[str, Any], dictionary: str, prefix: str = "f", goals: tuple[GoalLike, ...] = ()
    ) -> None:
        self.params = params
        self.dictionary = dictionary
        self.prefix = prefix
        self.goals = goals
        self._n = 0

    def _param(self, value: object) -> str:
        self._n += 1
        name = f"{self.prefix}{self._n}"
        while name in self.params:  # another compiler of the same statement
            self._n += 1
            name = f"{self.prefix}{self._n}"
        self.params[name] = value
        return f"${name}"

    def all(self, filters: tuple[Expr, ...]) -> str:
        return " AND ".join(f"({self.expr(f)})" for f in filters) or "true"

    def expr(self, e: Expr) -> str:
        if isinstance(e, Filter):
            return self.leaf(e)
        if isinstance(e, Not):
            return f"NOT ({self.expr(e.child)})"
        joiner = " AND " if isinstance(e, And) else " OR "
        return joiner.join(f"({self.expr(c)})" for c in e.children)

    def leaf(self, f: Filter) -> str:
        positive = NEGATED.get(f.op, f.op)
        if f.dimension == GOAL:
            return self._goals(f)
        if f.dimension.startswith(PROPS):
            return self._prop(f, positive)
        matched = value_condition(Filter(positive, f.dimension, f.values, f.case_sensitive), "value", self._param)
        codes = f"SELECT day, code FROM {self.dictionary} WHERE dimension = '{f.dimension}' AND ({matched})"
        column = "c_" + f.dimension.split(":", 1)[1]
        cond = f"(day, {column}) IN ({codes})"
        return f"NOT {cond}" if f.op in NEGATED else cond

    def _prop(self, f: Filter, positive: str) -> str:
        # Plausible's semantics: is / is_not compare the value, "(none)" standing for a missing key; the other
        # operators (negated too) hold only for events that have the key.
        value = f"props[CAST({self._param(f.dimension[len(PROPS) :])} AS VARCHAR)]"
        leaf = Filter(positive, f.dimension, f.values, f.case_sensitive)
        if positive == "is":
            cond = value_condition(leaf, f"coalesce({value}, '(none)')", self._param)
            return f"NOT ({cond})" if f.op in NEGATED else f"({cond})"
        matched = value_condition(leaf, value, self._param)
        inner = f"NOT ({matched})" if f.op in NEGATED else f"({matched})"
        return f"({value} IS NOT NULL AND {inner})"

    def _goals(self, f: Filter) -> str:
        chosen = selected_goals(f, self.goals)
        return "(" + (" OR ".join(self.goal(g) for g in chosen) or "false") + ")"

    def goal(self, g: GoalLike) -> str:
        """An event converts a goal: a pageview of a matching page, or the goal's event with its properties."""
        if g.kind == "page":
            pages = f"SELECT day, code FROM {self.dictionary} WHERE dimension = 'event:page' AND " \
                    f"regexp_full_match(value, CAST({self._param(g.page_regex)} AS VARCHAR))"  # fmt: skip
            return f"(kind = 0 AND (day, c_page) IN ({pages}))"
        names = f"SELECT day, code FROM {self.dictionary} WHERE dimension = 'event:name' AND value = " \
                f"CAST({self._param(g.event)} AS VARCHAR)"  # fmt: skip
        props = f" AND {self.goal_props(g)}" if g.props else ""
        return f"((day, c_name) IN ({names}){props})"

    def goal_props(self, g: GoalLike) -> str:
        """The property values an event goal asks of its events (``true`` when none)."""
        conds = [
            f"props[CAST({self._param(k)} AS VARCHAR)] = CAST({self._param(v)} AS VARCHAR)"
            for k, v in sorted(g.props.items())
        ]
        return " AND ".join(conds) or "true"


class GoalLike(Protocol):
    """What a goal of the site configuration (collector.siteconfig.Goal) gives the query layer."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def page_regex(self) -> str | None: ...

    @property
    def event(self) -> str | None: ...

    @property
    def props(self) -> dict[str, str]: ...


def selected_goals(f: Filter, goals: tuple[GoalLike, ...]) -> list[GoalLike]:
    """The goals an ``event:goal`` leaf names: by name (``is``) or by part of it (``contains``)."""

    def norm(v: str) -> str:
        return v if f.case_sensitive else v.lower()

    wanted = [norm(v) for v in f.values]
    if f.op == "is":
        return [g for g in goals if norm(g.name) in wanted]
    return [g for g in goals if any(w in norm(g.name) for w in wanted)]


def value_condition(f: Filter, expr: str, param: Callable[[object], str]) -> str:
    """A positive leaf (is / contains / matches) as a condition on a text expression (never NULL)."""
    if f.op == "is":
        if f.case_sensitive:
            return f"list_contains(CAST({param(list(f.values))} AS VARCHAR[]), {expr})"
        return f"list_contains(CAST({param([v.lower() for v in f.values])} AS VARCHAR[]), lower({expr}))"
    if f.op == "contains":
        if f.case_sensitive:
            return " OR ".join(f"contains({expr}, CAST({param(v)} AS VARCHAR))" for v in f.values)
        return " OR ".join(f"contains(lower({expr}), CAST({param(v.lower())} AS VARCHAR))" for v in f.values)
    flags = "" if f.case_sensitive else ", 'i'"
    return " OR ".join(f"regexp_matches({expr}, CAST({param(v)} AS VARCHAR){flags})" for v in f.values)


# --- neighbours ------------------------------------------------------------------------------------------


def neighbours(filters: tuple[Expr, ...]) -> list[tuple[Expr, ...]]:
    """Every filter set one leaf or one value away from ``filters`` (the empty set: no filter)."""
    out: list[tuple[Expr, ...]] = []
    for i, f in enumerate(filters):
        for variant in _variants(f):
            rest = filters[:i] + ((variant,) if variant is not None else ()) + filters[i + 1 :]
            if rest not in out and rest != filters:
                out.append(rest)
    return out


def _variants(expr: Expr) -> list[Expr | None]:
    """``expr`` with one leaf removed (None: nothing left) or one value of a leaf removed."""
    if isinstance(expr, Filter):
        out: list[Expr | None] = [None]
        if len(expr.values) > 1:
            for j in range(len(expr.values)):
                out.append(Filter(expr.op, expr.dimension, expr.values[:j] + expr.values[j + 1 :], expr.case_sensitive))
        return out
    if isinstance(expr, Not):
        return [None if v is None else Not(v) for v in _variants(expr.child)]
    variants: list[Expr | None] = []
    for i, child in enumerate(expr.children):
        for v in _variants(child):
            kids = expr.children[:i] + ((v,) if v is not None else ()) + expr.children[i + 1 :]
            if not kids:
                variants.append(None)
            elif len(kids) == 1:
                variants.append(kids[0])
            else:
                variants.append(type(expr)(kids))
    return variants
