"""`make run`'s launcher: the whole stack comes up with demo data and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import web
from tests.conftest import ROOT, free_port


@pytest.mark.slow
def test_local_stack_starts_seeds_and_stops(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ANALYTICS_PORT", "ANALYTICS_DASHBOARDS_PORT", "ANALYTICS_DEMO_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({k: str(v) for k, v in ports.items()})
    env["ANALYTICS_DATA_DIR"] = str(tmp_path / "var")
    log = tmp_path / "stack.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "local" / "stack.py")],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops everything" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert re.search(r"login admin / \S{12,}", text), text
        assert (tmp_path / "var" / "DEMO-DATA.txt").exists()
        reports = list((tmp_path / "var" / "reports" / "demo.onecloud.example").glob("*/index.html"))
        assert reports, "the first start runs the nightly batch: yesterday's report exists"

        collector = f"http://127.0.0.1:{ports['ANALYTICS_PORT']}"
        dashboards = f"http://127.0.0.1:{ports['ANALYTICS_DASHBOARDS_PORT']}"
        demo = f"http://127.0.0.1:{ports['ANALYTICS_DEMO_PORT']}"
        assert web.get(collector + "/readyz").status_code == 200
        page = web.get(demo + "/pricing.html").text
        assert f'src="{collector}/js/script.js"' in page and 'data-domain="demo.onecloud.example"' in page
        # Opt-out under `make run` (issue 18): the demo's privacy page links to the collector's /opt-out, which
        # links back to the demo site's real address (it used to say https://demo.onecloud.example/#…, which
        # does not resolve); the demo page also has the links itself.
        privacy = web.get(demo + "/privacy.html").text
        assert f'href="{collector}/opt-out"' in privacy and 'href="/#onecloud_ignore=true"' in privacy
        opt_out = web.get(collector + "/opt-out", headers={"Referer": demo + "/"}).text
        assert f'href="{demo}/#onecloud_ignore=true"' in opt_out and "https://demo.onecloud.example/#" not in opt_out
        assert "https://demo.onecloud.example/#" in web.get(collector + "/opt-out").text  # no referer: the site
        assert "(none): not in our network database" in web.get(collector + "/privacy").text
        login = web.get(dashboards + "/sites", follow_redirects=False)
        assert login.status_code in (302, 303, 307) and "/login" in login.headers["location"]

        # The seeded month is in the lake: ask the aggregator the way an analyst would.
        query = {"site_id": "demo.onecloud.example", "metrics": ["visitors", "pageviews"], "date_range": "30d"}
        out = subprocess.run(
            [sys.executable, "-m", "aggregator", "query", "--json", json.dumps(query)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        visitors, pageviews = json.loads(out)["results"][0]["metrics"]
        assert visitors > 1000 and pageviews > visitors

        # A live event through the collector ends up sealed and ingested by the running stack.
        r = web.post(
            collector + "/api/event",
            content=json.dumps({"n": "pageview", "u": f"{demo}/live-check", "d": "demo.onecloud.example"}),
            headers={
                "Content-Type": "text/plain",
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            },
        )
        assert r.status_code == 202 and "x-drop-reason" not in r.headers

        # The README's tour, as printed: the banner's nightly command (beside the running ingest), then a
        # Stats API key from the CLI and the tour's query with it.
        hint = re.search(r"\((\S+ -m aggregator nightly --no-mail)\)", text)
        assert hint, text
        nightly = subprocess.run(shlex.split(hint.group(1)), env=env, cwd=ROOT, capture_output=True, text=True)
        assert nightly.returncode == 0, nightly.stdout + nightly.stderr
        py = hint.group(1).split()[0]
        key = subprocess.run(
            [py, "-m", "dashboards", "keys", "create", "tour"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert key.returncode == 0, key.stderr
        body = {"site_id": "demo.onecloud.example", "metrics": ["visitors", "pageviews"], "date_range": "7d"}
        answer = web.post(
            dashboards + "/api/v2/query", json=body, headers={"Authorization": f"Bearer {key.stdout.strip()}"}
        )
        assert answer.status_code == 200 and answer.json()["results"][0]["metrics"][0] > 0, answer.text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()
    for name in ("collector", "ingest", "dashboards"):
        assert f"{name} stopped" in log.read_text()
    assert not list((tmp_path / "var" / "spool" / "open").glob("*.jsonl")), "the collector sealed its segment"
