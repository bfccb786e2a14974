"""Shared fixtures: real collector processes on free loopback ports, real files in tmp_path."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests import web

ROOT = Path(__file__).resolve().parent.parent

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a test marked ``slow`` first: how `make test` keeps its pytest-xdist workers busy to the end.

    `make test` runs ``-n auto`` with ``--dist=loadfile --no-loadscope-reorder`` (pyproject.toml): a
    file's tests run on one worker, one after another (its module fixtures, a browser or an S3 server,
    are built once), and files are handed out in this order. With the long files first, the files left
    at the end are short ones, so no worker sits idle long waiting for the others. Without ``-n``
    (one file while developing) this only reorders the files.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: collection order otherwise


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (`make test`): one worker more than the cores this process may run on.

    About a quarter of the suite's time is waiting, not computing (browsers, the beacon's real-time
    rules, servers starting, a slowloris), and a waiting worker leaves its core idle. Measured on the
    2-core VM, whole suite, taken in turns (docs/internals.md): three workers took 0.93x the wall time
    of two (median of six pairs) for 1.03-1.21x the CPU. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


# Our own generator: hypothesis and tests may seed the global one.
_PORTS = random.Random()
_PORT_FLOOR = 10_000


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for bind(0) and for outgoing connections' source ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback TCP port nobody holds now, for a server a test is about to start, from below the ephemeral range.

    A port from bind(0) is in the range the kernel also draws outgoing connections' source ports from, so
    any client connection (the suite makes thousands, on every worker) could take it before the server
    binds it: weed's volume server, started a second after its port was picked, once failed with
    "address already in use". Below that range only another free_port() can pick the same port, and it
    draws at random from ~20,000.
    """
    low = min(ephemeral_ports()[0], 65536)
    for _ in range(100 if low - _PORT_FLOOR >= 1000 else 0):
        port = _PORTS.randrange(_PORT_FLOOR, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # held, or in TIME_WAIT: the next one
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # no room below the range: the kernel's pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_test_isp_db(path: Path) -> Path:
    """A small GeoLite2-ASN-layout database with a few real ranges (v4 and v6)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6, database_type="GeoLite2-ASN", description={"en": "test ASN db"}, ipv4_compatible=True
    )
    rows = [
        ("8.8.8.0/24", 15169, "Google LLC"),
        ("1.1.1.0/24", 13335, "Cloudflare, Inc."),
        ("81.2.69.0/24", 20712, "Andrews & Arnold Ltd"),
        ("2001:4860::/32", 15169, "Google LLC"),
        ("2a00:1450::/32", 15169, "Google LLC"),
    ]
    for cidr, asn, org in rows:
        writer.insert_network(IPSet([cidr]), {"autonomous_system_number": asn, "autonomous_system_organization": org})
    writer.to_db_file(str(path))
    return path


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(directory)`` once per test run, however many pytest-xdist workers; each gets its own copy.

    Session fixtures are per worker: a lake that takes seconds to make (the real ingest and its
    rollups) was made once on each. The first worker to ask builds it under a file lock in the
    run's shared temporary directory (the parent of the workers' own, as pytest-xdist documents),
    the others wait for it; every worker then works on a private copy, as if it had built it.
    """
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = shared / f"built-{name}"
    with open(shared / f"built-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            building = shared / f"building-{name}"
            shutil.rmtree(building, ignore_errors=True)
            build(building / "data")
            building.rename(done)  # whole or absent: a worker that failed half-way leaves no "built-" dir
    return Path(shutil.copytree(done / "data", tmp_path_factory.mktemp(name) / "data"))


@pytest.fixture(scope="session")
def isp_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_isp_db(tmp_path_factory.mktemp("isp") / "test-asn.mmdb")


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)
        self.log_file.close()


def start_server(
    name: str,
    args: list[str],
    data_dir: Path,
    env: dict[str, str],
    *,
    port: int,
    cwd: Path = ROOT,
    timeout: float = 30.0,
) -> Server:
    """Start ``python -m <args>`` as its own process group and wait for its /healthz."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-{name}-{port}.log"
    log_file = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", data_dir, proc, log_path, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log()}")
        try:
            if web.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"{name} did not start:\n{server.log()}")


def start_collector(
    data_dir: Path,
    env: dict[str, str] | None = None,
    *,
    port: int | None = None,
    workers: int = 1,
    timeout: float = 30.0,
) -> Server:
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    full_env.update({"ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SPOOL_SEGMENT_SECONDS": "1"})
    full_env.update(env or {})
    args = ["collector", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return start_server("collector", args, data_dir, full_env, port=port, timeout=timeout)


@contextlib.contextmanager
def running_collector(data_dir: Path, env: dict[str, str] | None = None, **kw: object) -> Iterator[Server]:
    server = start_collector(data_dir, env, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.kill(signal.SIGTERM)
        server.log_file.close()


def sealed_records(data_dir: Path) -> list[dict[str, object]]:
    """Every record in the spool (sealed and open segments)."""
    import json

    out: list[dict[str, object]] = []
    spool = data_dir / "spool"
    for sub in ("sealed", "open"):
        for seg in sorted((spool / sub).glob("*.jsonl")) if (spool / sub).is_dir() else []:
            for line in seg.read_bytes().splitlines():
                if line.strip():
                    out.append(json.loads(line))
    return out


Record = dict[str, object]


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 10.0, poll: float = 0.05) -> None:
    """Until ``condition()`` holds; on the deadline an AssertionError naming ``what`` (never a silent return)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(poll)


def wait_for_records(
    data_dir: Path,
    done: int | Callable[[list[Record]], bool],
    where: Callable[[Record], bool] | None = None,
    timeout: float = 10.0,
) -> list[Record]:
    """The spool's records (``where`` picks some) once ``done`` holds: a count reached, or a predicate.

    The positive signal every test that sent events waits for; on the deadline it fails and shows what it
    found, instead of returning whatever was there.
    """
    test = (lambda rs: len(rs) >= done) if isinstance(done, int) else done
    found: list[Record] = []

    def ready() -> bool:
        nonlocal found
        found = [r for r in sealed_records(data_dir) if where is None or where(r)]
        return test(found)

    try:
        wait_until("the spool records", ready, timeout)
    except AssertionError:
        raise AssertionError(f"waited {timeout:g} s for the spool records; found {len(found)}: {found[:5]}") from None
    return found


def default_collector_env(isp_db: Path) -> dict[str, str]:
    """The collector settings most tests run with (the test ISP database, the two test sites)."""
    return {
        "ANALYTICS_ISP_DB": str(isp_db),
        "ANALYTICS_SITES": "www.onecloud.example,demo.onecloud.example",
        "ANALYTICS_TRUSTED_PROXIES": "127.0.0.1/32",
    }


@pytest.fixture
def collector_env(isp_db: Path) -> dict[str, str]:
    return default_collector_env(isp_db)


@pytest.fixture
def collector(tmp_path: Path, collector_env: dict[str, str]) -> Iterator[Server]:
    with running_collector(tmp_path / "data", collector_env) as server:
        yield server


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real, small tmpfs at ``where``: a disk that fills up or turns read-only (needs root, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
