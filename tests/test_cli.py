"""One CLI convention for the three packages (onecloud_kit.cli): help, the default command, settings, API keys."""

from __future__ import annotations

import importlib
import os
import sqlite3
from pathlib import Path

import pytest

from aggregator.settings import Settings as AggregatorSettings
from dashboards.app import create_app
from dashboards.settings import Settings as DashboardsSettings
from onecloud_kit.cli import Command, command_list
from tests import web
from tests.asgi import client_of_app
from tests.conftest import free_port, start_server

PACKAGES = ("collector", "aggregator", "dashboards")


def _leaves(commands: tuple[Command, ...], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for c in commands:
        if c.commands:
            out += _leaves(c.commands, f"{prefix}{c.name} ")
        else:
            out.append((f"{prefix}{c.name}", c.help))
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_help_lists_every_command_with_its_line(package: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = importlib.import_module(f"{package}.cli")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    commands = [*_leaves(cli.COMMANDS), ("settings", "print the settings")]
    for path, help_line in commands:
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(path + "  ")), None)
        assert line is not None, f"`{package} --help` does not list `{path}`:\n{out}"
        assert help_line in line, line
    # One line per command, nothing listed twice (argparse's own choice list is hidden).
    assert out.count("\n  settings ") == 1


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_prints_its_settings(package: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = importlib.import_module(f"{package}.cli")
    assert cli.main(["settings", "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| variable | default | meaning |") and "`ANALYTICS_DATA_DIR`" in table
    assert cli.main(["settings"]) == 0
    assert f"# {package}\n" in capsys.readouterr().out


@pytest.mark.parametrize("package", PACKAGES)
def test_a_bad_setting_is_one_line_and_exit_2(package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = importlib.import_module(f"{package}.cli")
    monkeypatch.setenv("ANALYTICS_TRUSTED_PROXIES" if package != "aggregator" else "ANALYTICS_K_ANONYMITY", "x/y")
    command = {"collector": ["isp-db", "refresh"], "aggregator": ["purge"], "dashboards": ["keys", "list"]}[package]
    assert cli.main(command) == 2


def test_the_listing_marks_the_default() -> None:
    commands = (Command("serve", "run it", lambda a, s: 0), Command("x", "group", commands=(Command("y", "leaf"),)))
    assert command_list(commands, "serve").splitlines() == ["  serve  run it (the default)", "  x y    leaf"]


@pytest.mark.parametrize("package", ["collector", "dashboards"])
def test_serve_is_the_default_command(package: str, tmp_path: Path, isp_db: Path) -> None:
    """``python -m collector --port 9000`` (and the dashboards alike) serves, as ``serve --port 9000`` does."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env |= {"ANALYTICS_DATA_DIR": str(tmp_path / "data"), "ANALYTICS_ISP_DB": str(isp_db)}
    server = start_server(package, [package, "--host", "127.0.0.1", "--port", str(port)], tmp_path / "data", env,
                          port=port)  # fmt: skip
    try:
        assert web.get(server.url + "/healthz").status_code == 200
        assert "listening on" in server.log()
    finally:
        server.kill()


def test_api_keys_from_the_cli_work_and_are_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dashboards import cli

    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    assert cli.main(["keys", "create", "nightly export"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("oca_") and "\n" not in token

    assert cli.main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert token not in listing  # shown once, never again
    (row,) = [ln.split("\t") for ln in listing.splitlines()[1:]]
    key_id, name, prefix, created_by = row[:4]
    assert (name, prefix, row[-1]) == ("nightly export", token[:10] + "…", "active")
    assert created_by.startswith("cli")

    settings = DashboardsSettings(data_dir=tmp_path)
    body = {"site_id": "demo.onecloud.example", "metrics": ["visitors"], "date_range": "7d"}
    with client_of_app(create_app(settings, aggregator=AggregatorSettings(data_dir=tmp_path))) as app:
        assert app.post("/api/v2/query", json=body, headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert cli.main(["keys", "revoke", key_id]) == 0
        assert app.post("/api/v2/query", json=body, headers={"authorization": f"Bearer {token}"}).status_code == 401
    assert cli.main(["keys", "revoke", key_id]) == 1  # once revoked, there is nothing to revoke
    assert "revoked" in capsys.readouterr().out

    with sqlite3.connect(tmp_path / "dashboards.sqlite3") as con:
        audit = con.execute("SELECT actor, action, detail FROM audit_log ORDER BY id").fetchall()
    assert [(a, d) for _, a, d in audit if a.startswith("apikey_")] == [
        ("apikey_create", f"nightly export ({token[:10]}…)"),
        ("apikey_revoke", key_id),
    ]
    assert all(actor == created_by for actor, action, _ in audit if action.startswith("apikey_"))


def test_user_changes_from_the_cli_are_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards import cli

    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    assert cli.main(["users", "add", "carol", "--admin"]) == 0
    assert cli.main(["users", "disable", "carol"]) == 0
    assert cli.main(["users", "enable", "carol"]) == 0
    assert cli.main(["users", "disable", "nobody"]) == 1
    with sqlite3.connect(tmp_path / "dashboards.sqlite3") as con:
        audit = con.execute("SELECT action, detail FROM audit_log ORDER BY id").fetchall()
    assert audit == [("user_add", "carol (admin)"), ("user_disable", "carol"), ("user_enable", "carol")]
