"""Package boundaries (ARCHITECTURE.md): checked on the source, so they cannot rot.

import-linter (run by `make test`) enforces the forbidden edges; this test adds
the allowlist that import-linter cannot express: the aggregator may use only
the published parts of the collector.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# collector.siteconfig: the one site configuration (sites, events, property keys, goals, funnels) all three read.
ALLOWED_COLLECTOR_FOR_AGGREGATOR = {"collector.schema", "collector.siteconfig"}
ALLOWED_COLLECTOR_FOR_DASHBOARDS = {"collector.siteconfig"}  # stdlib only
# The conventions all three share (settings, CLI) live outside all three: onecloud_kit.
SHARED = "onecloud_kit"


def _imports(package: str) -> list[tuple[Path, str]]:
    out = []
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((path, node.module))
                out += [(path, f"{node.module}.{alias.name}") for alias in node.names if node.module == "collector"]
    return out


def test_aggregator_uses_only_the_published_collector_modules() -> None:
    bad = [
        (p.name, m)
        for p, m in _imports("aggregator")
        if (m == "collector" or m.startswith("collector.")) and m not in ALLOWED_COLLECTOR_FOR_AGGREGATOR
    ]
    assert not bad, bad


def test_dashboards_use_only_the_site_configuration_from_the_collector() -> None:
    uses = [(p.name, m) for p, m in _imports("dashboards") if m == "collector" or m.startswith("collector.")]
    bad = [(p, m) for p, m in uses if m not in ALLOWED_COLLECTOR_FOR_DASHBOARDS]
    assert not bad, bad
    assert uses  # the check sees the imports there are (dashboards/services.py, siteconfig_admin.py)


@pytest.mark.parametrize("package", ["collector", "aggregator", "dashboards"])
def test_every_package_takes_the_settings_convention_from_the_shared_kit(package: str) -> None:
    assert any(m.startswith(SHARED + ".") for _, m in _imports(package)), package


def test_the_shared_kit_is_standard_library_only_and_imports_none_of_the_packages() -> None:
    """All three import it: it must not bring one package's dependencies (or code) into another."""
    outside = {
        (p.name, m)
        for p, m in _imports(SHARED)
        if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != SHARED
    }
    assert not outside, outside
    assert len(_imports(SHARED)) > 5  # the check reads the kit's files


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("collector", ("duckdb", "aggregator", "dashboards")),
        ("aggregator", ("dashboards", "starlette", "uvicorn")),
        ("dashboards", ("duckdb",)),
    ],
)
def test_forbidden_imports(package: str, forbidden: tuple[str, ...]) -> None:
    bad = [(p.name, m) for p, m in _imports(package) if m.split(".")[0] in forbidden]
    assert not bad, bad


def test_the_site_configuration_is_standard_library_only() -> None:
    """The aggregator and the dashboards import it: it must not bring the collector's dependencies along."""
    files = sorted((ROOT / "collector" / "siteconfig").glob("*.py"))
    assert files
    modules: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text())
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    outside = {
        m
        for m in modules
        if m.split(".")[0] not in sys.stdlib_module_names and not m.startswith("collector.siteconfig")
    }
    assert not outside, outside
