"""Drop counts with no shared disk: a collector ships them with its segments, ingest puts them in an S3 lake once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
from pathlib import Path

import pyarrow.fs as pafs

from aggregator.drops import dropped
from aggregator.ingest import Ingester
from collector.schema import DROP_COUNTS_SUFFIX
from tests import web
from tests.aggregator.conftest import run_cli
from tests.conftest import CHROME_UA, running_collector
from tests.scaleout.servers import SeaweedFS
from tests.scaleout.test_s3_lake import cli_env, s3_settings

WWW = "www.onecloud.example"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def test_shipped_drop_counts_reach_the_s3_lake_once(s3: SeaweedFS, tmp_path: Path, isp_db: Path) -> None:
    url = f"s3://spool/{tmp_path.name}"
    env = {**s3.env(), "ANALYTICS_SPOOL_SHIP_URL": url, "ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": WWW}
    with running_collector(tmp_path / "data", env) as server, web.client(base_url=server.url) as client:
        body = {"n": "pageview", "u": f"https://{WWW}/", "d": WWW}
        for ua, reason in ((CHROME_UA, None), (GOOGLEBOT, "bot"), (GOOGLEBOT, "bot")):
            r = client.post("/api/event", json=body, headers={"User-Agent": ua})
            assert r.status_code == 202 and r.headers.get("x-drop-reason") == reason
    # SIGTERM: the counts were written, then shipped with the last segment.
    assert not list((tmp_path / "data" / "spool" / "sealed").iterdir())
    fs = s3.filesystem()
    shipped = [
        i.path
        for i in fs.get_file_info(pafs.FileSelector(url.removeprefix("s3://")))  # type: ignore[attr-defined]
        if i.path.endswith(DROP_COUNTS_SUFFIX)
    ]
    assert len(shipped) == 1
    copy = fs.open_input_stream(shipped[0]).read()  # type: ignore[attr-defined]

    settings = dataclasses.replace(s3_settings(s3, tmp_path / "agg"), spool_url=url)
    # Killed right after the commit, before anything is published: the rerun applies the batch.
    killed = run_cli(settings, "ingest", env={**cli_env(settings), "ANALYTICS_INGEST_FAILPOINT": "committed"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert Ingester(settings).run_once().recovered_batches == 1
    today = dt.datetime.now(dt.UTC).date()
    assert dropped(settings, WWW, today, today).bot_kinds["crawler"] == 2
    # A collector that died between its upload and deleting its copy ships the same file again: counted once.
    with fs.open_output_stream(shipped[0]) as out:  # type: ignore[attr-defined]
        out.write(copy)
    assert Ingester(settings).run_once().dropped == 0
    assert dropped(settings, WWW, today, today).reasons["bot"] == 2
    keys = [
        i.path
        for i in fs.get_file_info(  # type: ignore[attr-defined]
            pafs.FileSelector(settings.lake_url.removeprefix("s3://"), recursive=True)
        )
        if i.type == pafs.FileType.File
    ]
    assert any(k.endswith(f"/drops/site={WWW}/day={today.isoformat()}/drops.parquet") for k in keys), keys
