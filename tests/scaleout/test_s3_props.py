"""The per-day cap on property values with the lake on S3 (a real SeaweedFS): the values already in the
lake are read from the object store, so the cap holds across ingest runs there too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aggregator.db import connect
from aggregator.ingest import Ingester
from aggregator.lake import Lake
from aggregator.synth import write_segments
from collector.schema import OTHER_VALUE, Event
from tests.events import make_event
from tests.scaleout.servers import SeaweedFS
from tests.scaleout.test_s3_lake import s3_settings

pytestmark = pytest.mark.slow

CAP = 6
DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _events(start: int, n: int) -> list[Event]:
    t0 = int(DAY.timestamp())
    return [
        make_event(ts=t0 + start + i, name="Signup", day_key=start + i + 1, props=(("order", f"v{start + i:03d}"),))
        for i in range(n)
    ]


def test_the_cap_holds_on_an_s3_lake_across_runs(s3: SeaweedFS, tmp_path: Path) -> None:
    import dataclasses

    settings = dataclasses.replace(s3_settings(s3, tmp_path / "data"), prop_values_per_day=CAP)
    for run in range(3):
        write_segments(_events(run * 4, 4), settings.sealed_dir, prefix=f"r{run}")
        Ingester(settings).run_once()  # a new ingester each run: what is in the lake is read from S3
    lake = Lake(settings.lake_dir)
    files = [str(f) for s in lake.site_dirs(lake.events_dir) for d in Lake.days_in(s)
             for f in Lake.visible_parquet(s / f"day={d.isoformat()}")]  # fmt: skip
    assert len(files) == 3 and all("s3://lake/" in f for f in files)  # objects, not local files
    con = connect(settings)
    try:
        values = {v for (v,) in con.execute("SELECT DISTINCT props['order'] FROM read_parquet(?)", [files]).fetchall()}
    finally:
        con.close()
    assert values == {f"v{i:03d}" for i in range(CAP - 1)} | {OTHER_VALUE}
