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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.filters import MAX_LEAVES, MAX_PATTERN, MAX_VALUES, Filter
from aggregator.request import MAX_NEIGHBOURS
from dashboards.panels import FILTERS

OPS: dict[str, str] = {"is": "is", "is_not": "is not", "contains": "contains", "contains_not": "does not contain"}
MAX_FILTER_VALUE = 600  # an "is" value (paths and referrers are capped at ingest well below this)


class FilterStateError(ValueError):
    """The URL's filters cannot be shown as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class FilterChoice:
    key: str  # the short URL name (panels.FILTERS)
    op: str
    values: tuple[str, ...]

    @property
    def dimension(self) -> str:
        return FILTERS[self.key][0]

    @property
    def label(self) -> str:
        return FILTERS[self.key][1]

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
            out.append((f"{self.key}_op", self.op))
        return out


Pairs = Sequence[tuple[str, str]]


def _values(raw: list[str], key: str, op: str) -> tuple[str, ...]:
    cap = MAX_PATTERN if op.startswith("contains") else MAX_FILTER_VALUE
    out: list[str] = []
    for v in raw:
        if v == "" or v in out:
            continue  # an emptied field in the editor removes that value
        if len(v) > cap:
            raise FilterStateError(f"A value of the {FILTERS[key][1]} filter is longer than {cap} characters.")
        out.append(v)
    if len(out) > MAX_VALUES:
        raise FilterStateError(f"The {FILTERS[key][1]} filter has more than {MAX_VALUES} values.")
    return tuple(out)


def _op(raw: str | None, key: str) -> str:
    op = raw or "is"
    if op not in OPS:
        raise FilterStateError(f"Unknown operator for the {FILTERS[key][1]} filter (one of: {', '.join(OPS)}).")
    return op


def parse(pairs: Pairs) -> tuple[FilterChoice, ...]:
    """The filters of a query string (pairs in order, repeated keys allowed)."""
    by_key: dict[str, list[str]] = {}
    ops: dict[str, str] = {}
    for k, v in pairs:
        if k in FILTERS:
            by_key.setdefault(k, []).append(v)
        elif k.endswith("_op") and k[:-3] in FILTERS:
            ops[k[:-3]] = v
    single = dict(pairs)
    added = single.get("add", "")
    if added:
        if added not in FILTERS:
            raise FilterStateError("Choose what to filter by.")
        op = _op(single.get("add_op"), added)
        if op != _op(ops.get(added), added):
            by_key[added] = []  # another operator replaces the condition on that dimension
        ops[added] = op
        by_key.setdefault(added, []).append(single.get("add_value", ""))
    out = []
    for key in FILTERS:  # a fixed order: the same filters give the same URL
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


def replace(filters: tuple[FilterChoice, ...], key: str, op: str, values: tuple[str, ...]) -> tuple[FilterChoice, ...]:
    """``filters`` with the condition on ``key`` set (no values: removed), in the fixed order."""
    by_key = {f.key: f for f in filters}
    if values:
        by_key[key] = FilterChoice(key, op, values)
    else:
        by_key.pop(key, None)
    return tuple(by_key[k] for k in FILTERS if k in by_key)
