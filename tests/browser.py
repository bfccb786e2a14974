"""Real headless Chromium (Debian's /usr/bin/chromium) and a small test site, both on loopback.

Chromium is started by us and attached to with Playwright over CDP (``no_defaults``),
not launched by Playwright: Playwright's own launch turns on focus emulation for
every page, which also keeps every page "visible" (Chromium counts it as a capture),
so a background tab never becomes hidden. Attached this way, the default context's
tabs behave like a real browser's: opening a tab hides the one behind it.
New contexts (``browser.new_context()``) still get Playwright's defaults: always
visible and focused, which makes timings deterministic for the other tests.

Host names resolve only through ``--host-resolver-rules``: the test site and the
collector get real-looking names mapped to 127.0.0.1 ports, and every other name
fails, so the browser cannot reach anything but loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium launched by Playwright (its defaults: every page visible and focused), headless."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def chromium(host_ports: dict[str, int], timeout: float = 30.0) -> Iterator[Browser]:
    """A headless Chromium where each name in ``host_ports`` means 127.0.0.1:<port>."""
    rules = [f"MAP {host} 127.0.0.1:{port}" for host, port in host_ports.items()]
    rules += ["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1"]
    profile = Path(tempfile.mkdtemp(prefix="beacon-chromium-"))
    args = [
        CHROMIUM,
        "--headless",
        *CHROMIUM_ARGS,
        f"--host-resolver-rules={', '.join(rules)}",
        "--no-proxy-server",
        # Plain-http test names must not be tried over https first.
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}", no_defaults=True)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


class TestSite:
    """A threading HTTP server on loopback; ``render(path)`` gives each page's HTML."""

    __test__ = False  # not a pytest class

    def __init__(self, render: Callable[[str], str | None]) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                html = render(self.path)
                if html is None:
                    self.send_error(404)
                    return
                body = html.encode()
                self.send_response(200)
                # Scripts as scripts: a JavaScript module is refused with any other type.
                js = self.path.split("?", 1)[0].endswith(".js")
                self.send_header("Content-Type", f"text/{'javascript' if js else 'html'}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                site.requests += 1

        self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TestSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
