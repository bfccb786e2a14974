"""Closed vocabularies for the fields derived from the User-Agent (PRIVACY.md rule 4).

A UA string is visitor-chosen, and ua-parser copies parts of it into the
family it returns: its CFNetwork rule takes whatever precedes ``/1.0
CFNetwork``, so ``someone@example.com/1.0 CFNetwork/1490.0.4 Darwin/23.2.0``
came out as the browser ``someone@example.com``. So the stored fields take
values only from closed sets:

- browser and OS: a family ua-parser can name, read once at import from its
  builtin regexes (ua-parser-builtins): every literal ``family_replacement``,
  and every value a ``$1`` replacement can take when the captured group is a
  finite set of literals (``(Firefox|Iceweasel)``). A group that can capture
  arbitrary text (``(.{0,200})``, ``([A-Za-z]+)``) contributes nothing. Plus
  the display names collector.useragent maps families to. Anything else is
  :data:`OTHER`.
- versions: one to :data:`MAX_VERSION_DIGITS` ASCII digits, else empty.
- device: desktop, mobile or tablet, else :data:`OTHER`.
"""

from __future__ import annotations

import dataclasses
import re
import re._constants as sre_c  # type: ignore[import-not-found]  # no stubs: the parser of re itself
import re._parser as sre_p  # type: ignore[import-not-found]
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from ua_parser import load_lazy_builtins

if TYPE_CHECKING:
    from collector.useragent import UAInfo

OTHER = "Other"
DEVICES = frozenset({"desktop", "mobile", "tablet"})
# Major versions in use are at most three digits (Chrome 131, Firefox 133,
# Android 15); four allows year-numbered products. Six would be an `:id`.
MAX_VERSION_DIGITS = 4
# Values one capture group may enumerate to before it counts as open-ended.
_MAX_VALUES = 256


class _Open(Exception):
    """The pattern can match text that no finite list holds."""


def _values(items: Iterable[tuple[Any, Any]]) -> list[str]:
    """Every string a parsed (sub)pattern can match, if that is a small finite set."""
    out = [""]
    for op, av in items:
        if op is sre_c.LITERAL:
            options = [chr(av)]
        elif op is sre_c.IN:
            options = []
            for kind, arg in av:
                if kind is sre_c.LITERAL:
                    options.append(chr(arg))
                elif kind is sre_c.RANGE and arg[1] - arg[0] < 26:
                    options.extend(chr(c) for c in range(arg[0], arg[1] + 1))
                else:
                    raise _Open
        elif op is sre_c.BRANCH:
            options = []
            for alternative in av[1]:
                try:
                    options.extend(_values(alternative))
                except _Open:
                    continue  # that alternative names nothing we can list; the others still do
        elif op is sre_c.SUBPATTERN:
            options = _values(av[3])
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) and av[1] <= 1:
            options = ([""] if av[0] == 0 else []) + _values(av[2])
        elif op is sre_c.AT:
            options = [""]
        else:
            raise _Open  # ".", "\w", repeats, classes: open-ended
        out = [a + b for a in out for b in options]
        if len(out) > _MAX_VALUES:
            raise _Open
    return out


def _group(items: Iterable[tuple[Any, Any]], number: int) -> Any:
    for op, av in items:
        found = None
        if op is sre_c.SUBPATTERN:
            found = av[3] if av[0] == number else _group(av[3], number)
        elif op is sre_c.BRANCH:
            found = next((g for alt in av[1] if (g := _group(alt, number)) is not None), None)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            found = _group(av[2], number)
        elif op is sre_c.ATOMIC_GROUP:
            found = _group(av, number)
        if found is not None:
            return found
    return None


def families(matchers: Iterable[Any]) -> frozenset[str]:
    """Every family the given ua-parser matchers can return, as far as it is a finite set."""
    names: set[str] = set()
    for m in matchers:
        template: str = m.family
        numbers = sorted({int(n) for n in re.findall(r"\$(\d)", template)})
        if not numbers:
            names.add(template)
            continue
        parsed = sre_p.parse(m.regex)
        filled = [template]
        try:
            for n in numbers:
                group = _group(parsed, n)
                if group is None:
                    raise _Open
                filled = [f.replace(f"${n}", v) for f in filled for v in _values(group)]
        except _Open:
            continue
        names.update(f for f in filled if f)
    return frozenset(names)


_UA_MATCHERS, _OS_MATCHERS, _ = load_lazy_builtins()
#: Families ua-parser can name, built once at import.
BROWSER_FAMILIES = families(_UA_MATCHERS)
OS_FAMILIES = families(_OS_MATCHERS)


@cache
def vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    """(browsers, operating systems): the parser's families plus collector.useragent's display names."""
    from collector import useragent  # imports this module; read once it is loaded

    browsers = BROWSER_FAMILIES | useragent.DISPLAY_BROWSERS | {useragent.UNKNOWN, OTHER}
    oses = OS_FAMILIES | useragent.DISPLAY_OSES | {useragent.UNKNOWN, OTHER}
    return frozenset(browsers), frozenset(oses)


def version(value: str) -> str:
    return value if value.isascii() and value.isdigit() and len(value) <= MAX_VERSION_DIGITS else ""


def closed_vocabulary(info: UAInfo) -> UAInfo:
    """``info`` with every field outside its closed set replaced (``Other``, or an empty version)."""
    browsers, oses = vocabulary()
    browser = info.browser if info.browser in browsers else OTHER
    os_ = info.os if info.os in oses else OTHER
    device = info.device if info.device in DEVICES else OTHER
    browser_version, os_version = version(info.browser_version), version(info.os_version)
    if (browser, browser_version, os_, os_version, device) == (
        info.browser,
        info.browser_version,
        info.os,
        info.os_version,
        info.device,
    ):
        return info
    return dataclasses.replace(
        info, browser=browser, browser_version=browser_version, os=os_, os_version=os_version, device=device
    )
