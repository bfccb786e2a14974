"""``python -m dashboards [<command>]``: serve (the default), users, Stats API keys, settings.

Changes made here are written to the access audit log like the same changes
made on the admin pages (PRIVACY.md rule 10), as the actor ``cli:<login name>``
(the account that ran the command: whoever can open the database file).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import sys

from dashboards.apikeys import ApiKeys
from dashboards.audit import AuditLog
from dashboards.settings import Settings
from dashboards.store import Store
from dashboards.users import UserError, Users, generate_password
from onecloud_kit import cli
from onecloud_kit.cli import Command, CommandError, load_settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container): still say it came from the command line
        return "cli"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from aggregator.settings import Settings as AggregatorSettings
    from collector.siteconfig import SiteConfigError, Watcher
    from dashboards.app import create_app

    host = args.host or settings.dashboards_host
    port = args.port if args.port is not None else settings.dashboards_port
    # Built once, here, and passed down; the dashboards' data dir is where the lake lives.
    aggregator = dataclasses.replace(load_settings(AggregatorSettings), data_dir=settings.data_dir)
    settings.secret_key()  # made now, before the app starts
    try:
        Watcher(settings.site_config_path)  # a broken site configuration: one line, not a traceback
    except SiteConfigError as exc:
        raise CommandError(f"site configuration: {exc}") from None
    app = create_app(settings, aggregator=aggregator)
    print(f"dashboards: listening on http://{host}:{port}  (data in {settings.data_dir.resolve()})", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=1,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level="info",
    )
    return 0


def _fail(exc: Exception) -> int:
    print(f"dashboards: {exc}", file=sys.stderr)
    return 1


def _users_add(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    if args.password_stdin:
        password, generated = sys.stdin.readline().rstrip("\r\n"), False
    else:
        password, generated = generate_password(), True
    try:
        user = Users(store).add(args.name, password, "admin" if args.admin else "viewer")
    except UserError as exc:
        return _fail(exc)
    AuditLog(store).write(_actor(), "user_add", detail=f"{user.name} ({user.role})")
    print(f"added {user.role} {user.name}")
    if generated:
        print(f"password: {password}")
    return 0


def _users_switch(disable: bool) -> Command:
    action = "disable" if disable else "enable"

    def run(args: argparse.Namespace, settings: Settings) -> int:
        store = Store(settings.db_path)
        try:
            user = Users(store).set_disabled(args.name, disable)
        except UserError as exc:
            return _fail(exc)
        AuditLog(store).write(_actor(), f"user_{action}", detail=user.name)
        print(f"{action}d {user.name}")
        return 0

    return Command(action, f"{action} a user{' (ends their sessions)' if disable else ''}", run, _name_argument)


def _users_list(args: argparse.Namespace, settings: Settings) -> int:
    for user in Users(Store(settings.db_path)).list():
        print(f"{user.name}\t{user.role}\t{'disabled' if user.disabled else 'active'}")
    return 0


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    actor = _actor()
    key, token = ApiKeys(store).create(args.name, actor)
    AuditLog(store).write(actor, "apikey_create", detail=f"{key.name} ({key.prefix}…)")
    # The token on stdout alone (scripts capture it); it exists in clear only now.
    print(f"created key #{key.id} {key.name} ({key.prefix}…); it is shown once, keep it now:", file=sys.stderr)
    print(token)
    return 0


def _when(epoch: int | None) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "-"


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    print("id\tname\tprefix\tcreated by\tcreated\tlast used\tstatus")
    for key in ApiKeys(Store(settings.db_path)).list():
        status = "active" if key.active else f"revoked {_when(key.revoked_at)}"
        row = (key.id, key.name, f"{key.prefix}…", key.created_by, _when(key.created_at), _when(key.last_used_at))
        print("\t".join(str(v) for v in row) + f"\t{status}")
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    if not ApiKeys(store).revoke(args.id):
        print(f"dashboards: no active key #{args.id} (`dashboards keys list` shows them)", file=sys.stderr)
        return 1
    AuditLog(store).write(_actor(), "apikey_revoke", detail=str(args.id))
    print(f"revoked key #{args.id}")
    return 0


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None, help="listen address (default ANALYTICS_DASHBOARDS_HOST)")
    p.add_argument("--port", type=int, default=None, help="listen port (default ANALYTICS_DASHBOARDS_PORT)")


def _name_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="give the admin role (default: viewer)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")


def _key_name_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="what the key is for (shown in the list and the audit log)")


def _key_id_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="the key's number, from `dashboards keys list`")


COMMANDS = (
    Command("serve", "run the dashboards web UI and Stats API", _serve, _serve_arguments),
    Command(
        "users",
        "manage dashboard users",
        commands=(
            Command(
                "add", "add a user; prints a generated password unless --password-stdin", _users_add, _add_arguments
            ),
            _users_switch(disable=True),
            _users_switch(disable=False),
            Command("list", "list users: name, role, active or disabled", _users_list),
        ),
    ),
    Command(
        "keys",
        "manage Stats API keys",
        commands=(
            Command(
                "create",
                "create a key; prints its token once (stored only as a hash)",
                _keys_create,
                _key_name_argument,
            ),  # fmt: skip
            Command("list", "list keys: id, name, prefix, creator, created, last used, status", _keys_list),
            Command("revoke", "revoke a key at once", _keys_revoke, _key_id_argument),
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    return cli.main("dashboards", "OneCloud Analytics dashboards", Settings, COMMANDS, argv, default="serve")


if __name__ == "__main__":
    raise SystemExit(main())
