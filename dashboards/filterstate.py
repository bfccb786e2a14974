"""The filters of a view, in the URL: one condition per dimension, an operator, any number of values (OR).

``?browser=Chrome&browser=Safari`` is "Browser is Chrome or Safari";
``&browser_op=is_not`` turns it into "is not"; ``contains`` and
``contains_not`` ignore case (as Plausible's dashboard does). Conditions on
different dimensions must all hold. Row clicks add ``?key=value``, so
bookmarks of the earlier one-value form keep working.

The filter editor is plain GET forms that write these same parameters (no
script needed): each chip's form sets ``key`` and ``key_op``; the "add a
filter" form sends ``add``, ``add_op`` and ``add_value``, merged here and then
redirected to the canonical URL. Anything the query layer would refuse is
refused here first with a message (a 400 page), never silently dropped:
unknown operators, too many values or conditions, values too long.

Goals (``?goal=Order``) take ``is`` and ``contains`` only, as the query layer
does; a custom property (``?prop.plan=Business``) takes every operator, and
its operator is ``prop_op.plan`` (a ``_op`` suffix could be another key's name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from aggregator.filters import MAX_LEAVES, MAX_PATTERN, MAX_VALUES, Filter
from aggregator.request import MAX_NEIGHBOURS
from dashboards.panels import FILTERS, PROP, filter_dimension, filter_label, is_filter_key

#: The operators the editor offers: a closed subset of the query layer's (aggregator.filters.Operator; the
#: regular-expression ones stay API-only), so an operator from the URL is one of these or a 400.
EditorOp = Literal["is", "is_not", "contains", "contains_not"]
EDITOR_OPS: tuple[EditorOp, ...] = get_args(EditorOp)
OPS: dict[EditorOp, str] = {"is": "is", "is_not": "is not", "contains": "contains", "contains_not": "does not contain"}
#: The operators a goal filter takes (the query layer's: a goal is converted or not, per event).
GOAL_OPS: dict[EditorOp, str] = {"is": "is", "contains": "contains"}
PROP_OP = "prop_op."
MAX_FILTER_VALUE = 600  # an "is" value (paths and referrers are capped at ingest well below this)


def ops_of(key: str) -> dict[EditorOp, str]:
    return GOAL_OPS if key == "goal" else OPS


def op_param(key: str) -> str:
    """The URL name of a filter's operator: ``browser_op``, ``prop_op.plan``."""
    return PROP_OP + key[len(PROP) :] if key.startswith(PROP) else f"{key}_op"


class FilterStateError(ValueError):
    """The URL's filters cannot be shown as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class FilterChoice:
    key: str  # the short URL name (panels.FILTERS)
    op: EditorOp
    values: tuple[str, ...]

    @property
    def dimension(self) -> str:
        return filter_dimension(self.key)

    @property
    def label(self) -> str:
        return filter_label(self.key)

    @property
    def op_param(self) -> str:
        return op_param(self.key)

    @property
    def ops(self) -> dict[EditorOp, str]:
        return ops_of(self.key)

    @property
    def op_label(self) -> str:
        return OPS[self.op]

    @property
    def joiner(self) -> str:
        # "is Chrome or Safari", but "is not Chrome nor Safari": a negated condition excludes every value.
        return "nor" if self.op.endswith("_not") else "or"

    @property
    def text(self) -> str:
        return f"{self.label} {self.op_label} {f' {self.joiner} '.join(self.values)}"

    def to_filter(self) -> Filter:
        # "contains" ignores case like Plausible's dashboard; "is" is exact (a click on a row).
        return Filter(self.op, self.dimension, self.values, case_sensitive=self.op in ("is", "is_not"))

    def params(self) -> list[tuple[str, str]]:
        out = [(self.key, v) for v in self.values]
        if self.op != "is":
            out.append((self.op_param, self.op))
        return out


Pairs = Sequence[tuple[str, str]]


def _values(raw: list[str], key: str, op: str) -> tuple[str, ...]:
    cap = MAX_PATTERN if op.startswith("contains") else MAX_FILTER_VALUE
    out: list[str] = []
    for v in raw:
        if v == "" or v in out:
            continue  # an emptied field in the editor removes that value
        if len(v) > cap:
            raise FilterStateError(f"A value of the {filter_label(key)} filter is longer than {cap} characters.")
        out.append(v)
    if len(out) > MAX_VALUES:
        raise FilterStateError(f"The {filter_label(key)} filter has more than {MAX_VALUES} values.")
    return tuple(out)


def _op(raw: str | None, key: str) -> EditorOp:
    wanted = raw or "is"
    allowed = ops_of(key)
    for op in EDITOR_OPS:
        if op == wanted and op in allowed:
            return op
    raise FilterStateError(f"Unknown operator for the {filter_label(key)} filter (one of: {', '.join(allowed)}).")


def _key_of_op(param: str) -> str | None:
    """The filter key whose operator ``param`` names, if any."""
    if param.startswith(PROP_OP):
        key = PROP + param[len(PROP_OP) :]
        return key if is_filter_key(key) else None
    if param.endswith("_op") and param[:-3] in FILTERS:
        return param[:-3]
    return None


def _order(key: str) -> tuple[int, str]:
    """The fixed order of filters in a URL: the dimensions' order, then properties by name."""
    keys = list(FILTERS)
    return (keys.index(key), "") if key in FILTERS else (len(keys), key)


def parse(pairs: Pairs) -> tuple[FilterChoice, ...]:
    """The filters of a query string (pairs in order, repeated keys allowed)."""
    by_key: dict[str, list[str]] = {}
    ops: dict[str, str] = {}
    for k, v in pairs:
        if k.startswith(PROP) and not is_filter_key(k):
            shown = k[len(PROP) :][:40]
            raise FilterStateError(f"No such property key can be filtered by: {shown!r}.")
        if is_filter_key(k):
            by_key.setdefault(k, []).append(v)
        elif (of := _key_of_op(k)) is not None:
            ops[of] = v
    single = dict(pairs)
    added = single.get("add", "")
    if added:
        if not is_filter_key(added):
            raise FilterStateError("Choose what to filter by.")
        op = _op(single.get("add_op"), added)
        if op != _op(ops.get(added), added):
            by_key[added] = []  # another operator replaces the condition on that dimension
        ops[added] = op
        by_key.setdefault(added, []).append(single.get("add_value", ""))
    out = []
    for key in sorted(set(by_key) | set(ops), key=_order):  # a fixed order: the same filters give the same URL
        op = _op(ops.get(key), key)
        values = _values(by_key.get(key, []), key, op)
        if values:
            out.append(FilterChoice(key, op, values))
    check(tuple(out))
    return tuple(out)


def check(filters: tuple[FilterChoice, ...]) -> None:
    """The bounds of the query layer, said in the dashboards' words."""
    if len(filters) > MAX_LEAVES:
        raise FilterStateError(f"At most {MAX_LEAVES} filters at once.")
    # Each condition, and each value of a condition with several, is one more neighbouring question the query
    # layer answers to rule out differencing (aggregator/kanon.py): it bounds them.
    neighbours = sum(1 + (len(f.values) if len(f.values) > 1 else 0) for f in filters)
    if neighbours > MAX_NEIGHBOURS:
        raise FilterStateError(
            f"Too many filter values at once: each filter counts 1, plus 1 per value when it has several; "
            f"at most {MAX_NEIGHBOURS} in all."
        )


def replace(
    filters: tuple[FilterChoice, ...], key: str, op: EditorOp, values: tuple[str, ...]
) -> tuple[FilterChoice, ...]:
    """``filters`` with the condition on ``key`` set (no values: removed), in the fixed order."""
    by_key = {f.key: f for f in filters}
    if values:
        by_key[key] = FilterChoice(key, op, values)
    else:
        by_key.pop(key, None)
    return tuple(by_key[k] for k in sorted(by_key, key=_order))
