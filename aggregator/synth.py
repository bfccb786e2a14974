"""Synthetic traffic: realistic de-identified events, written as spool segments.

Used by the tests (with :mod:`aggregator.oracle` computing the expected answers
in plain Python) and for demo data. Distributions: Zipf-like pages, a mix of
sources and campaigns, browser/OS/device profiles, ISPs, 1-3 visits per visitor
and day separated by more than 30 minutes, 1-8 pageviews per visit, engaged
time per page, occasional custom events, and activity around UTC midnight
(where the collector's salt, hence the day key, changes).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from collector.schema import MAX_ENGAGED_MS, Event

PAGES = [
    "/",
    "/pricing",
    "/docs",
    "/docs/install",
    "/docs/api",
    "/blog",
    "/blog/launch",
    "/about",
    "/contact",
    "/careers",
    "/docs/faq",
    "/blog/privacy",
    "/legal/privacy",
    "/status",
    "/download",
]
# (referrer_source, referrer_host, referrer_path, channel, utm_source, utm_medium, utm_campaign)
SOURCES: list[tuple[str | None, str | None, str | None, str, str | None, str | None, str | None]] = [
    (None, None, None, "Direct", None, None, None),
    ("Google", "google.com", "/", "Organic Search", None, None, None),
    ("Bing", "bing.com", "/search", "Organic Search", None, None, None),
    ("LinkedIn", "linkedin.com", "/feed", "Organic Social", None, None, None),
    ("news.example.org", "news.example.org", "/story/:id", "Referral", None, None, None),
    ("newsletter", None, None, "Email", "newsletter", "email", "autumn"),
    ("Google", "google.com", "/", "Paid Search", "Google", "cpc", "brand"),
    ("GitHub", "github.com", "/onecloud", "Referral", None, None, None),
]
SOURCE_WEIGHTS = [30, 25, 6, 8, 5, 5, 6, 4]
# (browser, version, os, os_version, device)
PROFILES = [
    ("Chrome", "131", "Windows", "10", "desktop"),
    ("Chrome", "130", "Android", "14", "mobile"),
    ("Safari", "18", "iOS", "18", "mobile"),
    ("Safari", "17", "macOS", "14", "desktop"),
    ("Firefox", "133", "Windows", "11", "desktop"),
    ("Edge", "131", "Windows", "10", "desktop"),
    ("Safari", "18", "iOS", "17", "tablet"),
]
PROFILE_WEIGHTS = [35, 20, 15, 10, 8, 8, 4]
ISPS: list[tuple[int | None, str | None]] = [
    # Spelled as the collector stores them (display names, collector/orgnames.py).
    (3320, "Deutsche Telekom"),
    (7922, "Comcast Cable Communications"),
    (2856, "British Telecommunications"),
    (15169, "Google"),
    (None, None),
    (6830, "Liberty Global"),
]
ISP_WEIGHTS = [30, 25, 15, 5, 10, 15]
CUSTOM = ["Outbound Link: Click", "File Download", "404"]


@dataclass(frozen=True, slots=True)
class Traffic:
    """Visitors per site and day; ``hot_start`` puts some visits just before midnight."""

    start: dt.date
    days: int
    visitors_per_day: dict[str, int]
    seed: int = 1


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _key(rng: random.Random) -> int:
    return rng.getrandbits(64)


def generate(traffic: Traffic) -> list[Event]:
    rng = random.Random(traffic.seed)
    events: list[Event] = []
    for site, per_day in sorted(traffic.visitors_per_day.items()):
        for d in range(traffic.days):
            day = traffic.start + dt.timedelta(days=d)
            for _ in range(per_day):
                events.extend(_visitor_day(rng, site, day))
    events.sort(key=lambda e: (e.ts, e.site, e.day_key))
    return events


def _visitor_day(rng: random.Random, site: str, day: dt.date) -> list[Event]:
    profile = rng.choices(PROFILES, PROFILE_WEIGHTS)[0]
    asn, isp = rng.choices(ISPS, ISP_WEIGHTS)[0]
    keys: dict[dt.date, int] = {}  # the same person gets a new key each UTC day

    def key_for(ts: int) -> int:
        d = dt.datetime.fromtimestamp(ts, dt.UTC).date()
        if d not in keys:
            keys[d] = _key(rng)
        return keys[d]

    out: list[Event] = []
    base = _epoch(day)
    n_visits = rng.choices([1, 2, 3], [70, 22, 8])[0]
    # One visitor in 12 starts late in the evening: visits run over midnight.
    t = base + (rng.randint(23 * 3600 + 1800, 86399) if rng.random() < 1 / 12 else rng.randint(0, 20 * 3600))
    for _ in range(n_visits):
        src = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
        n_pages = rng.choices(range(1, 9), [40, 20, 12, 10, 7, 5, 3, 3])[0]
        for p in range(n_pages):
            path = rng.choices(PAGES, [1 / (i + 1) for i in range(len(PAGES))])[0]
            first = p == 0
            out.append(
                _event(
                    site, t, "pageview", path, src if first else SOURCES[0], profile, asn, isp, key_for(t), None, None
                )
            )
            dwell = rng.randint(2, 600)
            if rng.random() < 0.8:
                engaged = min(MAX_ENGAGED_MS, rng.randint(500, dwell * 1000))
                te = t + dwell
                out.append(
                    _event(
                        site,
                        te,
                        "engagement",
                        path,
                        src if first else SOURCES[0],
                        profile,
                        asn,
                        isp,
                        key_for(te),
                        engaged,
                        rng.randint(0, 100),
                    )
                )
            if rng.random() < 0.08:
                tc = t + 1
                out.append(
                    _event(site, tc, rng.choice(CUSTOM), path, SOURCES[0], profile, asn, isp, key_for(tc), None, None)
                )
            t += dwell + rng.randint(1, 300)
        t += rng.randint(1801, 4 * 3600)  # more than 30 minutes: the next one is a new visit
    return out


def _event(
    site: str,
    ts: int,
    name: str,
    path: str,
    src: tuple[str | None, str | None, str | None, str, str | None, str | None, str | None],
    profile: tuple[str, str, str, str, str],
    asn: int | None,
    isp: str | None,
    day_key: int,
    engaged_ms: int | None,
    scroll: int | None,
) -> Event:
    rs, rh, rp, channel, us, um, uc = src
    browser, bv, os_, osv, device = profile
    return Event(
        site=site,
        ts=ts,
        name=name,
        path=path,
        referrer_source=rs,
        referrer_host=rh,
        referrer_path=rp,
        channel=channel,
        utm_source=us,
        utm_medium=um,
        utm_campaign=uc,
        utm_content=None,
        utm_term=None,
        browser=browser,
        browser_version=bv,
        os=os_,
        os_version=osv,
        device=device,
        asn=asn,
        isp=isp,
        network_domain=None,
        day_key=day_key,
        engaged_ms=engaged_ms,
        scroll_depth=scroll,
    )


def write_segments(
    events: Iterable[Event], sealed_dir: Path, per_segment: int = 1000, prefix: str = "synth"
) -> list[Path]:
    """Write events as sealed spool segments (the collector's file format and naming)."""
    sealed_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    batch: list[str] = []

    def flush() -> None:
        path = sealed_dir / f"{len(paths):020d}-{prefix}-0-{len(paths):06d}.jsonl"
        path.write_text("".join(batch))
        paths.append(path)
        batch.clear()

    for event in events:
        batch.append(json.dumps(event.to_record(), separators=(",", ":")) + "\n")
        if len(batch) >= per_segment:
            flush()
    if batch:
        flush()
    return paths
