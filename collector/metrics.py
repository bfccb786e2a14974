"""Prometheus counters. Labels are fixed reason codes only: never request data.

With several worker processes, ``collector serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
(under the data dir) before the workers start; each worker's counters then live
in small mmap files there and ``/metrics`` answers the sum over all workers,
whichever worker serves the scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from collector.props import PROP_DROP_REASONS, PropDrop
from collector.reasons import DROP_KINDS, DROP_REASONS, REJECT_REASONS, DropKind, DropReason, RejectReason


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter("analytics_events_received", "Requests to /api/event", registry=self.registry)
        self.accepted = Counter(
            "analytics_events_accepted", "Events written to the spool (answered 202)", registry=self.registry
        )
        self.dropped = Counter(
            "analytics_events_dropped",
            "Events answered 202 and deliberately not stored, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "analytics_events_rejected",
            "Requests answered with an error status, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.bots = Counter(
            "analytics_bots_dropped",
            'Events dropped as bots (also counted in analytics_events_dropped{reason="bot"}), by kind',
            ["kind"],
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "analytics_spool_commit_seconds",
            "Time of one spool group commit (one synchronous write: O_DSYNC)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.commit_events = Counter(
            "analytics_spool_committed_events", "Events made durable by group commits", registry=self.registry
        )
        self.props_dropped = Counter(
            "analytics_props_dropped",
            "Custom properties of stored events that were not kept, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.site_config_reloads = Counter(
            "analytics_site_config_reloads",
            "Times a changed site configuration file came into force",
            registry=self.registry,
        )
        # 1 while the file in place does not parse (the last good configuration stays in force).
        self.site_config_broken = Gauge(
            "analytics_site_config_broken",
            "1 while the site configuration file cannot be used",
            registry=self.registry,
            multiprocess_mode="max",
        )
        # Pre-create every label so dashboards see zeros instead of gaps.
        self._drop = {r: self.dropped.labels(r) for r in DROP_REASONS}
        self._reject = {r: self.rejected.labels(r) for r in REJECT_REASONS}
        self._bot = {k: self.bots.labels(k) for k in DROP_KINDS}
        self._prop = {r: self.props_dropped.labels(r) for r in PROP_DROP_REASONS}

    def drop(self, reason: DropReason, kind: DropKind | None = None) -> None:
        self._drop[reason].inc()
        if kind is not None:
            self._bot[kind].inc()

    def reject(self, reason: RejectReason) -> None:
        self._reject[reason].inc()

    def drop_prop(self, reason: PropDrop) -> None:
        self._prop[reason].inc()

    def site_config(self, ok: bool, changed: bool) -> None:
        self.site_config_broken.set(0 if ok else 1)
        if changed:
            self.site_config_reloads.inc()

    def on_commit(self, events: int, seconds: float) -> None:
        """A group commit made ``events`` durable (spool writer thread): each is answered 202 next."""
        self.commit_seconds.observe(seconds)
        self.commit_events.inc(events)
        # Counted here, once per commit, rather than once per request: the same number, and
        # it is in place before any of those requests is answered.
        self.accepted.inc(events)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
