"""The closed sets the collector counts by: why an event was dropped or refused, and what kind of bot it was.

The code that decides (collector/pipeline.py, collector/endpoint.py) and
collector/metrics.py, which pre-creates one ``/metrics`` label per value, share
these types, so mypy catches a reason that one side spells differently.
Labels are fixed codes, never request data (PRIVACY.md).
"""

from __future__ import annotations

from typing import Literal, get_args

from collector.bots import BotKind

#: Answered 202 and not stored (``X-Drop-Reason``; ``analytics_events_dropped_total{reason=...}``).
#: ``unparsable_url``: the page URL does not parse (was ``spam`` before 2026-12; docs/operations.md).
DropReason = Literal["bot", "opt_out", "unknown_site", "unknown_event", "localhost", "unparsable_url"]
DROP_REASONS: tuple[DropReason, ...] = get_args(DropReason)

#: Answered with an error status (``analytics_events_rejected_total{reason=...}``).
RejectReason = Literal["bad_request", "too_large", "unsupported_media_type", "unavailable", "internal_error"]
REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)

#: Why a ``bot`` drop was one: the user agent's kind (collector.bots), or the pipeline's data-centre signal.
DropKind = Literal[BotKind, "datacenter"]
DROP_KINDS: tuple[DropKind, ...] = get_args(DropKind)


def drop_kind(kind: str) -> DropKind:
    """``kind`` as a :data:`DropKind`; a value outside the set is a programming error, not an input."""
    for known in DROP_KINDS:
        if kind == known:
            return known
    raise ValueError(f"not a bot kind: {kind!r}")
