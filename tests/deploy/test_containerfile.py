"""No container engine runs here, so the Containerfile is checked for what would break a build."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_containerfile_copies_what_exists_and_runs_unprivileged() -> None:
    text = (ROOT / "deploy" / "Containerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"COPY of missing {src}"
    assert "\nUSER onecloud\n" in text
    # Every package the distribution ships is copied in: `pip install .` would build a wheel without it.
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {line.split()[1] for line in text.splitlines() if line.startswith("COPY ")}
    for pattern in shipped:
        assert pattern.rstrip("*") in copied, f"the package {pattern.rstrip('*')} is not copied into the image"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for word in ("onecloud-collector", "onecloud-aggregator", "onecloud-dashboards"):
        if word in text:
            assert word in scripts, f"{word} is used but not a console script"
    assert "ANALYTICS_SECRET" not in text and "PASSWORD" not in text.upper()
