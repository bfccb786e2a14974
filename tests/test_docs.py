"""The data inventory is one declaration: Event, README, .env.example and the settings all follow it."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

from collector.schema import FIELD_NAMES, INVENTORY, Event
from collector.settings import Settings

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


def test_readme_tables_match_the_code() -> None:
    gen = _gendocs()
    current = (ROOT / "README.md").read_text()
    assert current == gen.readme_text(current), "README is stale: run `make docs`"


def test_env_example_matches_the_settings() -> None:
    gen = _gendocs()
    assert (ROOT / ".env.example").read_text() == gen.env_file(), ".env.example is stale: run `make docs`"
    for f in dataclasses.fields(Settings):
        assert f.metadata.get("help"), f"setting {f.name} has no help line"
