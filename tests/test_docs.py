"""The docs follow the code: the inventory and settings tables, .env.example, and every command they show."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

from collector.schema import FIELD_NAMES, INVENTORY, Event
from collector.settings import Settings
from onecloud_kit import cli

ROOT = Path(__file__).resolve().parent.parent


def _gendocs():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gendocs", ROOT / "scripts" / "gendocs.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gendocs"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_event_fields_are_exactly_the_inventory() -> None:
    assert tuple(f.name for f in dataclasses.fields(Event)) == FIELD_NAMES
    for f, inv in zip(dataclasses.fields(Event), INVENTORY, strict=True):
        allows_none = "None" in str(f.type)
        assert allows_none == inv.nullable, f.name
        assert ("int" in str(f.type)) == (inv.json_type == "int"), f.name


def test_no_identifier_field_exists() -> None:
    forbidden = (
        "ip",
        "addr",
        "user_agent",
        "ua",
        "cookie",
        "query",
        "fragment",
        "country",
        "city",
        "location",
        "lat",
        "lon",
        "email",
    )
    for name in FIELD_NAMES:
        assert name not in forbidden and not name.startswith(("ip_", "ua_")), name


def test_every_privacy_md_group_is_declared() -> None:
    groups = {f.group for f in INVENTORY}
    assert groups == {
        "site",
        "timestamp",
        "event name",
        "page path",
        "referrer",
        "campaign",
        "browser, version",
        "operating system, version",
        "device class",
        "ISP",
        "network domain (off by default)",
        "day key",
        "engaged time, scroll depth",
        "custom property",
    }


def test_generated_tables_match_the_code() -> None:
    gen = _gendocs()
    for path in {file for file, _, _ in gen.BLOCKS}:
        current = (ROOT / path).read_text()
        assert current == gen.generated(path, current), f"{path} is stale: run `make docs`"


def test_env_example_matches_the_settings() -> None:
    gen = _gendocs()
    assert (ROOT / ".env.example").read_text() == gen.env_file(), ".env.example is stale: run `make docs`"
    for f in dataclasses.fields(Settings):
        assert f.metadata.get("help"), f"setting {f.name} has no help line"


# --- every command and link the docs show ------------------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "RESULTS.md"]
DEFAULTS = {"collector": "serve", "aggregator": None, "dashboards": "serve"}
# A command as printed: `python -m <package> ...` or an installed console script `.../bin/onecloud-<package> ...`,
# up to the end of the code span, a comment (`#`, two spaces), a table cell or an alternative (`|`).
COMMAND = re.compile(r"(?:python -m |bin/onecloud-)(collector|aggregator|dashboards)((?: [^\s`|#)]+)*)")
PLACEHOLDERS = {"YYYY-MM-DD": "2026-11-22", "<body>": "{}"}


def _printed_commands() -> list[tuple[str, str, list[str]]]:
    out = []
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            for m in COMMAND.finditer(line.replace("  ", " #")):
                words = m.group(2).strip()
                if "<command>" in words or (not words and DEFAULTS[m.group(1)] is None):
                    continue  # the generic form (`python -m aggregator <command>`), or the program's name alone
                tokens = [PLACEHOLDERS.get(w, w) for w in shlex.split(words.replace("[", "").replace("]", ""))]
                out.append((f"{doc.relative_to(ROOT)}: {m.group(0)}", m.group(1), tokens))
    return out


def test_the_docs_show_commands() -> None:
    found = _printed_commands()
    assert len(found) > 30 and {pkg for _, pkg, _ in found} == set(DEFAULTS), found  # the pattern still matches


@pytest.mark.parametrize(
    ("where", "package", "tokens"), _printed_commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_printed_command_parses(where: str, package: str, tokens: list[str]) -> None:
    """Each command the docs print names a real command with options it takes, as the CLI parses it."""
    mod = importlib.import_module(f"{package}.cli")
    try:
        _, args = cli.parse(package, "", mod.Settings, mod.COMMANDS, tokens, default=DEFAULTS[package])
    except SystemExit as exc:
        if exc.code == 0 and "--help" in tokens:
            return
        pytest.fail(f"{where}: the CLI refuses it (exit {exc.code})")
    command = getattr(args, "_command", None)
    assert command is not None and command.run is not None, where


def test_every_make_target_shown_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for doc in DOCS:
        for target in re.findall(r"(?:^|`)make ([a-z][a-z-]*)", doc.read_text(), re.M):
            assert target in targets, f"{doc.relative_to(ROOT)} shows `make {target}`; the Makefile has no such target"


def _anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    heads = re.findall(r"^#+ (.+)$", doc.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_every_relative_link_resolves() -> None:
    for doc in DOCS:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", doc.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (doc.parent / target).resolve() if target else doc
            assert path.exists(), f"{doc.relative_to(ROOT)} links to {target}, which does not exist"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{doc.relative_to(ROOT)} links to {target}#{anchor}: no such heading"
