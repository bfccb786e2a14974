"""The dashboards app in this process, behind a plain (sync) httpx client, with an injectable clock.

For pages, tables and input cases: no server process to start, the same app
and the same lake (tests/asgi.py runs it). Real processes stay for browsers
and servers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from aggregator.settings import Settings as AggregatorSettings
from dashboards.app import create_app
from dashboards.settings import Settings
from tests.asgi import InProcess
from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, base_env, csrf_token


class Clock:
    """A settable clock for the app (``svc.now()``); unset, the real time."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.at = now

    def __call__(self) -> dt.datetime:
        return self.at or dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def running_app(
    data_dir: Path, clock: Callable[[], dt.datetime] | None = None, env: dict[str, str] | None = None
) -> Iterator[InProcess]:
    environ = base_env(data_dir) | (env or {})
    app = create_app(Settings.from_env(environ), aggregator=AggregatorSettings.from_env(environ), clock=clock)
    transport = InProcess(app)
    try:
        yield transport
    finally:
        transport.close()


def client_of(transport: InProcess) -> httpx.Client:
    """Another browser of the same app (its own cookies)."""
    return httpx.Client(transport=_Shared(transport), base_url="http://testserver", timeout=60)


class _Shared(httpx.BaseTransport):
    def __init__(self, inner: InProcess) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)


@contextlib.contextmanager
def app_client(
    data_dir: Path, clock: Callable[[], dt.datetime] | None = None, env: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    with running_app(data_dir, clock, env) as transport, client_of(transport) as client:
        yield client


def log_in(client: httpx.Client, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> httpx.Client:
    token = csrf_token(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": "/sites"})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    return client


@contextlib.contextmanager
def logged_in(
    data_dir: Path, clock: Callable[[], dt.datetime] | None = None, name: str = ADMIN, password: str = ADMIN_PASSWORD
) -> Iterator[httpx.Client]:
    with app_client(data_dir, clock) as client:
        yield log_in(client, name, password)
