"""k-anonymity for people, and no differencing (PRIVACY.md rule 5): which rows an answer may show.

**How many people a row describes.** Day keys cannot link days (by design), so
a row's visitors (summed over days) cannot tell one person on five days from
five people. A row counts as describing at least

    P = max(most distinct day keys on any one UTC day,
            distinct profiles over the range)

people, where a *profile* is a visitor's device and network (browser and OS
with versions, device class, AS number, network domain): one person coming
back on other days keeps theirs, so K visitor-days of one person are one
profile. Both parts can only undercount people (two people with the same
profile on different days are one), never overcount one person, except for
someone who uses K devices or networks. A row is shown only if ``P >= K``.

**(other)** carries the exact distinct visitors of everything folded into it
(counted again over the union, not summed). It is shown only if it too
describes at least K people; when it would describe between 1 and K−1, the
smallest shown rows are folded into it until it does (or nothing is left),
so a total minus the shown rows never reveals a hidden group.

**Neighbours.** For a filtered answer, each filter set one leaf or one value
away (aggregator/filters.py: no filter for a single one) is answered too, and
a row is shown only if, for every neighbour, the visitors it gains or loses
there are none or describe at least K people; the same holds for the
segment's own totals, else nothing is shown. So ``is_not X`` against the
total, ``A`` against ``A and B``, or ``is [a, b]`` against ``is [b]`` never
reveal a group under K. Answers are exact and deterministic: asking again,
or the same question in other words, gives the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aggregator.metrics import Components

Key = tuple[str, ...]


@dataclass(slots=True)
class Agg:
    """A row's components summed over days, and its most visitors on any one day."""

    comps: Components
    max_daily: int

    @property
    def visitors(self) -> int:
        return self.comps.visitors


@dataclass(frozen=True, slots=True)
class Diff:
    """What a row gains or loses against one neighbouring filter: visitors in all, most on one day."""

    total: int
    max_daily: int


class Probe(Protocol):
    """The counts the rules need beyond the rows themselves, computed on demand by the query layer."""

    neighbours: int

    def profiles(self, keys: list[Key]) -> dict[Key, int]: ...

    def diffs(self, neighbour: int) -> dict[Key, Diff]: ...

    def diff_profiles(self, neighbour: int, keys: list[Key]) -> dict[Key, int]: ...

    def other(self, folded: list[Key]) -> tuple[Agg, int] | None: ...


@dataclass(slots=True)
class Decision:
    shown: list[Key]
    folded: list[Key]
    other: Agg | None  # the (other) row, when it may be shown
    other_suppressed: bool = False
    reasons: dict[Key, str] = field(default_factory=dict)


def people_ok(k: int, visitors: int, max_daily: int, profiles: Callable[[], int]) -> bool:
    """Whether a group describes at least K people (see the module docstring)."""
    if visitors < k:
        return False  # profiles and daily counts are both at most the visitors
    if max_daily >= k:
        return True
    return profiles() >= k


def decide(groups: dict[Key, Agg], k: int, probe: Probe, rank: Callable[[Key], tuple[object, ...]]) -> Decision:
    """Split rows into shown and folded; ``rank`` orders rows from the first to fold (smallest) on."""
    candidates = [key for key, agg in groups.items() if agg.visitors > 0]  # no visitor, no row (engagement only)
    # 1. people: rows whose days all stay under K need their profiles counted, in one query
    ok = {key for key in candidates if groups[key].max_daily >= k}
    unsure = [key for key in candidates if key not in ok and groups[key].visitors >= k]
    if unsure:
        counts = probe.profiles(unsure)
        ok.update(key for key in unsure if counts.get(key, 0) >= k)
    reasons = {key: "under K people" for key in candidates if key not in ok}
    # 2. neighbours: what a row gains or loses against each neighbouring filter
    for n in range(probe.neighbours):
        diffs = probe.diffs(n)
        check = []
        for key in [key for key in candidates if key in ok]:
            d = diffs.get(key, Diff(0, 0))
            if d.total == 0 or d.max_daily >= k:
                continue
            if d.total < k:
                ok.discard(key)
                reasons[key] = "differs from a neighbouring filter by under K people"
            else:
                check.append(key)
        if check:
            counts = probe.diff_profiles(n, check)
            for key in check:
                if counts.get(key, 0) < k:
                    ok.discard(key)
                    reasons[key] = "differs from a neighbouring filter by under K people"
    shown = [key for key in candidates if key in ok]
    folded = [key for key in candidates if key not in ok]
    # 3. (other): exact over the union, and never a group under K (fold more until it is not)
    decision = Decision(shown, folded, None, reasons=reasons)
    if not folded:
        return decision
    shown.sort(key=rank)
    for _ in range(len(shown) + 1):
        counted = probe.other(folded)
        if counted is None:  # cannot be counted exactly: not shown
            decision.other_suppressed = True
            break
        agg, profiles = counted
        if agg.visitors >= k and max(agg.max_daily, profiles) >= k:
            decision.other = agg
            break
        if not shown:
            decision.other_suppressed = True
            break
        moved = shown.pop(0)  # the smallest shown row joins (other)
        folded.append(moved)
        reasons[moved] = "folded so that (other) is not a group under K"
    decision.shown, decision.folded = shown, folded
    return decision


def segment_ok(k: int, total: Agg, probe: Probe, key: Key = ()) -> str | None:
    """Why a filtered segment cannot be shown at all, or None: its totals pass the same rules as a row."""
    if total.visitors == 0:
        return None  # an empty segment reveals nothing and is shown as zeros
    if not people_ok(k, total.visitors, total.max_daily, lambda: probe.profiles([key]).get(key, 0)):
        return "the segment describes fewer than K people"
    for n in range(probe.neighbours):
        d = probe.diffs(n).get(key, Diff(0, 0))
        if d.total == 0 or d.max_daily >= k:
            continue
        if d.total < k or probe.diff_profiles(n, [key]).get(key, 0) < k:
            return "the segment differs from a neighbouring filter by fewer than K people"
    return None


def smallest_first(groups: dict[Key, Agg]) -> Callable[[Key], tuple[object, ...]]:
    return lambda key: (groups[key].visitors, key)


def union(keys: Iterable[Key]) -> list[Key]:
    return sorted(set(keys))
