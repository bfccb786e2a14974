from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aggregator.settings import Settings
from onecloud_kit.settings import SettingsError, describe

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_environment() -> None:
    s = Settings.from_env({})
    assert (s.raw_retention_days, s.aggregate_retention_months, s.k_anonymity) == (90, 25, 5)
    assert s.sealed_dir == Path("var/spool/sealed") and s.lake_dir == Path("var/lake")
    s = Settings.from_env({"ANALYTICS_DATA_DIR": "/srv/a", "ANALYTICS_K_ANONYMITY": "10"})
    assert s.lake_dir == Path("/srv/a/lake") and s.k_anonymity == 10


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ANALYTICS_AGGREGATE_RETENTION_MONTHS": "26"}, "AGGREGATE_RETENTION_MONTHS"),
        ({"ANALYTICS_K_ANONYMITY": "0"}, "K_ANONYMITY"),
        ({"ANALYTICS_RAW_RETENTION_DAYS": "x"}, "RAW_RETENTION_DAYS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    for var, _, _ in describe(Settings):
        assert f"\n{var}=" in text, var


@contextlib.contextmanager
def counting_store() -> Iterator[tuple[str, list[str]]]:
    """An HTTP endpoint on loopback that answers every request 200 and notes its method and path."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_HEAD = do_POST = _answer  # noqa: N815 (the stdlib's names)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_s3_lake_root_is_built_once_not_on_every_access(tmp_path: Path) -> None:
    with counting_store() as (endpoint, seen):
        s = Settings(
            data_dir=tmp_path, lake_url="s3://lake/prefix", s3_endpoint=endpoint, s3_access_key="k", s3_secret_key="s"
        )
        root = s.lake_dir
        asked = len(seen)
        assert asked >= 1, "the first access checks (and if need be creates) the bucket"
        assert all(s.lake_dir is root for _ in range(3))
        assert len(seen) == asked, seen  # no client, no bucket request per access
    # A changed copy is its own lake, built for itself.
    local = dataclasses.replace(s, lake_url="")
    assert local.lake_dir == tmp_path / "lake" and s.lake_dir is root
    assert "_LAKE_ROOT" not in " ".join(var for var, _, _ in describe(Settings))  # a cache, not a setting
