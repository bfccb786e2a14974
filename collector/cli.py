"""``python -m collector [<command>]``: serve (the default), manage the ISP database, print the settings."""

from __future__ import annotations

import argparse
import os
import shutil

from collector import ispcli
from collector.settings import Settings
from onecloud_kit import cli
from onecloud_kit.cli import Command, CommandError


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from collector.app import site_config
    from collector.siteconfig import SiteConfigError

    try:
        site_config(settings)  # written from the legacy settings on a first start, then checked: before any worker
    except SiteConfigError as exc:
        raise CommandError(f"site configuration: {exc}") from None
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    workers = args.workers or settings.workers
    if workers > 1:
        # Per-worker counters are summed through files (see collector/metrics.py).
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from collector.httpserver import raise_descriptor_limit

    # Inherited by the workers, each of which keeps its connections below its own limit.
    raise_descriptor_limit(settings.max_connections)
    print(f"collector: listening on http://{host}:{port}  (data in {settings.data_dir.resolve()})", flush=True)
    uvicorn.run(
        "collector.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # httptools with a head cap, head/body deadlines and a connection ceiling (collector/httpserver.py);
        # no WebSocket upgrade, which would hand the connection to a protocol without them.
        http="collector.httpserver:CollectorHttpProtocol",
        ws="none",
        # The access log would write every visitor's IP address: it stays off.
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,  # client address handling is ours (trusted proxies only)
        timeout_graceful_shutdown=10,
    )
    return 0


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default=None, help="listen address (default ANALYTICS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default ANALYTICS_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default ANALYTICS_WORKERS or 1)")


COMMANDS = (
    Command("serve", "run the public collector endpoint", _serve, _serve_arguments),
    ispcli.COMMAND,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main("collector", "OneCloud Analytics collector", Settings, COMMANDS, argv, default="serve")


if __name__ == "__main__":
    raise SystemExit(main())
