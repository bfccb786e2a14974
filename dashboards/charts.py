"""Breakdown bars as inline SVG (an inline style would break the CSP).

The time-series chart is the aggregator's (:mod:`aggregator.charts`): one
implementation for the dashboards and the nightly report.
"""

from __future__ import annotations

from markupsafe import Markup


def bar(share: float) -> Markup:
    """A row's share of the panel's top value, as an SVG bar."""
    width = max(0.0, min(1.0, share)) * 100
    return Markup(
        '<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" focusable="false">'
        f'<rect width="{width:.2f}" height="10"/></svg>'
    )
