"""One place that builds a whole de-identified event for tests: defaults plus the fields a test cares about."""

from __future__ import annotations

from typing import Any

from collector.schema import Event

_DEFAULTS: dict[str, Any] = dict(
    site="www.onecloud.example",
    ts=1_795_000_000,
    name="pageview",
    path="/",
    referrer_source=None,
    referrer_host=None,
    referrer_path=None,
    channel="Direct",
    utm_source=None,
    utm_medium=None,
    utm_campaign=None,
    utm_content=None,
    utm_term=None,
    browser="Firefox",
    browser_version="133",
    os="Linux",
    os_version="",
    device="desktop",
    asn=None,
    isp=None,
    network_domain=None,
    day_key=12345,
    engaged_ms=None,
    scroll_depth=None,
)


def make_event(**fields: Any) -> Event:
    """An Event with every inventory field; unknown names fail (Event has exactly the inventory's fields)."""
    return Event(**(_DEFAULTS | fields))
