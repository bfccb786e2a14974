"""The site configuration against real collector processes: seeded from the legacy settings, reloaded
without a restart on every host that has a copy (several workers, several collectors), a broken file
keeps the last good configuration, and custom properties are counted on /metrics by reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.siteconfig import from_dict, load, save
from tests import web
from tests.conftest import CHROME_UA, ROOT, Server, free_port, running_collector, sealed_records

A, B = "a.onecloud.example", "b.onecloud.example"


def _post(server: Server, site: str, name: str = "pageview", props: dict[str, str] | None = None) -> str | None:
    """The drop reason of one event (None: stored)."""
    body = {"n": name, "u": f"https://{site}/x", "d": site, "p": props or {}}
    r = web.post(server.url + "/api/event", json=body, headers={"User-Agent": CHROME_UA}, timeout=10)
    assert r.status_code == 202, r.text
    return r.headers.get("x-drop-reason")


def _until_stored(server: Server, site: str, name: str, in_a_row: int = 12) -> None:
    """Wait for a positive signal: ``in_a_row`` events in a row stored (so every worker has reloaded)."""
    deadline = time.monotonic() + 30
    streak = 0
    while streak < in_a_row:
        assert time.monotonic() < deadline, server.log()
        streak = streak + 1 if _post(server, site, name) is None else 0
        if not streak:
            time.sleep(0.05)


def _metric(server: Server, name: str, labels: str = "") -> float:
    text = web.get(server.url + "/metrics", timeout=10).text
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


def _config(*sites: dict[str, object]) -> dict[str, object]:
    return {"sites": list(sites)}


@pytest.mark.slow
def test_a_changed_file_is_in_force_on_every_collector_without_a_restart(tmp_path: Path, isp_db: Path) -> None:
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITE_CONFIG_INTERVAL": "0.2"}
    legacy = {**env, "ANALYTICS_SITES": A, "ANALYTICS_CUSTOM_EVENTS": "Outbound Link: Click"}
    one, two = tmp_path / "host1", tmp_path / "host2"
    with (
        running_collector(one, legacy, workers=2) as c1,
        running_collector(two, {**legacy, "ANALYTICS_SITE_CONFIG": str(tmp_path / "etc" / "sites.json")}) as c2,
    ):
        # First start: the legacy settings were written into each host's file.
        for path in (one / "sites.json", tmp_path / "etc" / "sites.json"):
            config = load(path)
            assert config.domains == (A,)
            site = config.site(A)
            assert site is not None and site.custom_events == ("Outbound Link: Click",)
            assert site.prop_keys == ("url", "path")
        for c in (c1, c2):
            assert _post(c, B) == "unknown_site" and _post(c, A, "Signup") == "unknown_event"

        # Configuration management writes a new version on both hosts.
        new = from_dict(
            _config(
                {"domain": A, "custom_events": ["Signup"], "prop_keys": ["plan"]},
                {"domain": B, "goals": [{"event": "Order"}]},
            )
        )
        for path in (one / "sites.json", tmp_path / "etc" / "sites.json"):
            save(new, path)
        for c in (c1, c2):
            _until_stored(c, B, "Order")
            _until_stored(c, A, "Signup")
            assert _post(c, A, "Outbound Link: Click") == "unknown_event"  # no longer allowed
            assert _metric(c, "analytics_site_config_reloads_total") >= 1

        # Properties: the allowlisted key is kept, the rest counted by reason.
        before = _metric(c2, "analytics_props_dropped_total", 'reason="unknown_key"')
        assert _post(c2, A, "Signup", {"plan": "Pro", "email": "x", "other": "y"}) is None
        assert _metric(c2, "analytics_props_dropped_total", 'reason="unknown_key"') == before + 2

        # A broken file: the last good configuration stays in force, the gauge says so.
        (one / "sites.json").write_text('{"sites": [{"domain": "a.onecloud.example", "goals": [{"page": "x"}]}]}')
        deadline = time.monotonic() + 30
        while _metric(c1, "analytics_site_config_broken") != 1:
            assert time.monotonic() < deadline, c1.log()
            time.sleep(0.1)
        assert _post(c1, B, "Order") is None
        assert "site configuration not reloaded" in c1.log() and "goals[0].page" in c1.log()
        save(new, one / "sites.json")
        while _metric(c1, "analytics_site_config_broken") != 0:
            assert time.monotonic() < deadline, c1.log()
            time.sleep(0.1)

    stored = [r for r in sealed_records(two) if r["name"] == "Signup" and r["props"]]
    assert [r["props"] for r in stored] == [{"plan": "Pro"}]


def test_the_file_decides_after_the_first_start(tmp_path: Path, isp_db: Path) -> None:
    env = {"ANALYTICS_ISP_DB": str(isp_db), "ANALYTICS_SITES": A}
    with running_collector(tmp_path / "data", env):
        pass
    # A later start with another legacy value: the file (A) stays the source, and the log says so.
    with running_collector(tmp_path / "data", {**env, "ANALYTICS_SITES": B}) as c:
        assert _post(c, B) == "unknown_site" and _post(c, A) is None
        assert "ANALYTICS_SITES is not used" in c.log()
    assert load(tmp_path / "data" / "sites.json").domains == (A,)


def test_a_broken_file_at_start_is_a_clear_error(tmp_path: Path, isp_db: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    broken = _config({"domain": A, "funnels": [{"name": "F", "steps": ["x", "y"]}]})
    (data / "sites.json").write_text(json.dumps(broken))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({"ANALYTICS_DATA_DIR": str(data), "ANALYTICS_ISP_DB": str(isp_db)})
    proc = subprocess.run(
        [sys.executable, "-m", "collector", "serve", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "sites.json" in proc.stderr and "funnels[0].steps: 'x' is not a goal of this site" in proc.stderr
    assert "Traceback" not in proc.stderr
