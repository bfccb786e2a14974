"""``python -m collector``: serve the collector (more commands join as they are built)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

from collector.config import SettingsError, env_example, markdown_table
from collector.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    workers = args.workers or settings.workers
    if workers > 1:
        # Per-worker counters are summed through files (see collector/metrics.py).
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    print(f"collector: listening on http://{host}:{port}  (data in {settings.data_dir.resolve()})", flush=True)
    uvicorn.run(
        "collector.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The access log would write every visitor's IP address: it stays off.
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,  # client address handling is ours (trusted proxies only)
        timeout_graceful_shutdown=10,
    )
    return 0


def _settings_doc(args: argparse.Namespace) -> int:
    if args.format == "env":
        sys.stdout.write(env_example(Settings, "collector"))
    else:
        sys.stdout.write(markdown_table(Settings))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="collector", description="OneCloud Analytics collector")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the public collector endpoint")
    serve.add_argument("--host", default=None, help="listen address (default ANALYTICS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default ANALYTICS_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default ANALYTICS_WORKERS or 1)")
    serve.set_defaults(func=_serve)
    doc = sub.add_parser("settings", help="print the settings with their defaults")
    doc.add_argument("--format", choices=("env", "markdown"), default="env")
    doc.set_defaults(func=_settings_doc)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["serve", *(argv or [])])
    logging.basicConfig(
        level=os.environ.get("ANALYTICS_LOG_LEVEL", "info").upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
