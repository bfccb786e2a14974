"""The shipped systemd units pass `systemd-analyze verify` (pointed at this checkout's venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.*"))


def test_units_exist() -> None:
    names = {u.name for u in UNITS}
    assert {"onecloud-collector.service", "onecloud-ingest.service", "onecloud-dashboards.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(tmp_path: Path, unit: Path) -> None:
    venv_bin = Path(sys.executable).parent
    for other in UNITS:  # timers need their service next to them
        text = other.read_text().replace("/opt/onecloud-analytics/.venv/bin", str(venv_bin))
        (tmp_path / other.name).write_text(text)
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            exe = line.split("=", 1)[1].split()[0].replace("/opt/onecloud-analytics/.venv/bin", str(venv_bin))
            assert Path(exe).exists(), f"{unit.name}: {exe} is not installed by this project"
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit.name)], capture_output=True, text=True)
    problems = [ln for ln in (result.stdout + result.stderr).splitlines() if unit.stem in ln or "Unknown" in ln]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


@pytest.mark.parametrize("unit", [u for u in UNITS if u.suffix == ".service"], ids=lambda u: u.name)
def test_services_raise_the_descriptor_limit(unit: Path) -> None:
    # systemd's default soft limit (1024) let 1,200 slow sockets starve a collector (issue 13, item 6).
    from collector.httpserver import descriptor_headroom
    from collector.settings import Settings

    values = [ln.split("=", 1)[1].strip() for ln in unit.read_text().splitlines() if ln.startswith("LimitNOFILE=")]
    assert len(values) == 1, f"{unit.name}: no LimitNOFILE="
    soft = int(values[0].split(":")[0])
    if unit.name == "onecloud-collector.service":
        # Room for every worker's connection ceiling, so the ceiling is never lowered to fit.
        assert soft - descriptor_headroom(soft) >= Settings().max_connections
    assert soft >= 4096
