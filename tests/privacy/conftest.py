"""A real collector pipeline (UA parser, ISP database, salts on disk) that any test here can give custom event names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.isp import IspDatabase
from collector.payload import parse_payload
from collector.pipeline import Hit, Pipeline
from collector.salts import DayKeys, FileSaltStore
from collector.schema import Event
from collector.settings import Settings
from collector.useragent import UAParser
from tests.conftest import CHROME_UA

SITE = "www.onecloud.example"
TS = 1_795_000_000

# Builds an Event from (body, UA, extra allowlisted custom event names).
Build = Callable[..., Event]


@pytest.fixture(scope="session")
def build_event(tmp_path_factory: pytest.TempPathFactory, isp_db: Path) -> Build:
    """``build_event(body, ua=..., custom_events=())``: the Event the collector would store, or ``Dropped``."""
    data = tmp_path_factory.mktemp("pipeline")
    ua_parser, isp, keys = UAParser(), IspDatabase(isp_db), DayKeys(FileSaltStore(data / "salts"))
    pipelines: dict[tuple[str, ...], Pipeline] = {}

    def build(body: dict[str, object], ua: str = CHROME_UA, custom_events: tuple[str, ...] = ()) -> Event:
        pipeline = pipelines.get(custom_events)
        if pipeline is None:
            settings = Settings(data_dir=data, sites=(SITE,), isp_db=isp_db, custom_events=custom_events)
            pipeline = pipelines[custom_events] = Pipeline(settings, ua_parser, isp, keys)
        payload = parse_payload(json.dumps({"n": "pageview", "d": SITE, **body}).encode())
        return pipeline.build(Hit(payload=payload, ip="8.8.8.8", ua=ua, ts=TS))

    return build


def stored_strings(event: Event) -> dict[str, str]:
    """Every text field of an Event (what reaches the spool, the lake and every report)."""
    return {k: v for k, v in event.to_record().items() if isinstance(v, str)}
