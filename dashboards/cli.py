"""``python -m dashboards``: serve, users add/disable/enable/list, settings."""

from __future__ import annotations

import argparse
import sys

from dashboards.settings import Settings, SettingsError
from dashboards.store import Store
from dashboards.users import UserError, Users, generate_password


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    host = args.host or settings.dashboards_host
    port = args.port if args.port is not None else settings.dashboards_port
    settings.secret_key()  # made now, before any worker starts
    from collector.siteconfig import SiteConfigError, Watcher

    try:
        Watcher(settings.site_config_path)  # a broken site configuration: one line, not a traceback
    except SiteConfigError as exc:
        print(f"dashboards: site configuration: {exc}", file=sys.stderr)
        return 2
    import dataclasses

    from aggregator.settings import Settings as AggregatorSettings
    from dashboards.app import create_app

    try:
        # Built once, here, and passed down; the dashboards' data dir is where the lake lives.
        aggregator = dataclasses.replace(AggregatorSettings.from_env(), data_dir=settings.data_dir)
    except SettingsError as exc:
        print(f"dashboards: {exc}", file=sys.stderr)
        return 2
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


def _users(args: argparse.Namespace, settings: Settings) -> int:
    users = Users(Store(settings.db_path))
    try:
        if args.action == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
                generated = False
            else:
                password, generated = generate_password(), True
            user = users.add(args.name, password, "admin" if args.admin else "viewer")
            print(f"added {user.role} {user.name}")
            if generated:
                print(f"password: {password}")
        elif args.action in ("disable", "enable"):
            user = users.set_disabled(args.name, args.action == "disable")
            print(f"{args.action}d {user.name}")
        else:
            for user in users.list():
                print(f"{user.name}\t{user.role}\t{'disabled' if user.disabled else 'active'}")
    except UserError as exc:
        print(f"dashboards: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboards", description="OneCloud Analytics dashboards")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the dashboards web UI and Stats API")
    serve.add_argument("--host", default=None, help="listen address (default ANALYTICS_DASHBOARDS_HOST)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default ANALYTICS_DASHBOARDS_PORT)")
    serve.set_defaults(func=_serve)
    users = sub.add_parser("users", help="manage dashboard users")
    usub = users.add_subparsers(dest="action", required=True)
    add = usub.add_parser("add", help="add a user; prints a generated password unless --password-stdin")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="give the admin role (default: viewer)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    for action in ("disable", "enable"):
        p = usub.add_parser(action, help=f"{action} a user")
        p.add_argument("name")
    usub.add_parser("list", help="list users")
    users.set_defaults(func=_users)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["serve", *(argv or [])])
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"dashboards: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
