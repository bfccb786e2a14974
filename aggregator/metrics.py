"""The Stats API metrics, computed from additive per-row components.

Every query (raw scan or rollup) produces the same :class:`Components` per
result row. They add up exactly across days (day keys differ per day, visits
never cross midnight), which is why daily rollups summed over a range give
exact visitors; and the ``(other)`` row of k-anonymity is the sum of the rows
it folds.

Definitions (ARCHITECTURE.md): visitors are distinct day keys per UTC day,
summed over days; visits are runs of a day key's events without a gap over 30
minutes; pageviews and custom events count, engagement events only carry
engaged time and scroll depth. A bounce is a visit with one pageview and under
10 s engaged time. Visit duration is last minus first event of the visit. Time
on page is engaged time summed over the reporting visitors (clipped per report).
Scroll depth is the mean, over (visitor, page), of the deepest scroll reported.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

METRICS: tuple[str, ...] = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "time_on_page",
    "scroll_depth",
    "events",
    "conversion_rate",
    "group_conversion_rate",
    "percentage",
)
#: A period's headline figures and their names, in the order every surface shows them: the dashboards'
#: cards and chart choices, the nightly report and its mail. The one list.
KPI_LABELS: dict[str, str] = {
    "visitors": "Visitors",
    "visits": "Visits",
    "pageviews": "Pageviews",
    "views_per_visit": "Views per visit",
    "bounce_rate": "Bounce rate",
    "visit_duration": "Visit duration",
    "time_on_page": "Time on page",
}
KPI_METRICS: tuple[str, ...] = tuple(KPI_LABELS)
#: The figures of a goal (Plausible's): converting visitors, conversions, the conversion rate.
GOAL_METRICS: tuple[str, ...] = ("visitors", "events", "conversion_rate")
#: Metrics of a row against another answer's visitors (the query layer computes them, not Components).
RATIO_METRICS = frozenset({"conversion_rate", "group_conversion_rate", "percentage"})

VISIT_GAP_SECONDS = 30 * 60
BOUNCE_ENGAGED_MS = 10_000

Number = int | float


@dataclass(slots=True)
class Components:
    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    events: int = 0
    bounces: int = 0
    duration_sum: int = 0
    engaged_sum: int = 0
    engaged_n: int = 0
    scroll_sum: int = 0
    scroll_n: int = 0

    def add(self, other: Components) -> None:
        for f in COMPONENT_NAMES:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    @classmethod
    def from_row(cls, values: tuple[object, ...]) -> Components:
        return cls(*(int(v) if v is not None else 0 for v in values))  # type: ignore[call-overload]

    def metric(self, name: str) -> Number:
        if name in ("visitors", "visits", "pageviews", "events"):
            return int(getattr(self, name))
        if name == "views_per_visit":
            return round(self.pageviews / self.visits, 2) if self.visits else 0.0
        if name == "bounce_rate":
            return round(100 * self.bounces / self.visits) if self.visits else 0
        if name == "visit_duration":
            return round(self.duration_sum / self.visits) if self.visits else 0
        if name == "time_on_page":
            return round(self.engaged_sum / 1000 / self.engaged_n) if self.engaged_n else 0
        if name == "scroll_depth":
            return round(self.scroll_sum / self.scroll_n) if self.scroll_n else 0
        raise KeyError(name)


COMPONENT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Components))
