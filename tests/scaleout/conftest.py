"""Session-wide real servers for the scale-out tests: one PostgreSQL and one SeaweedFS per worker.

The S3 tests share the store (each writes under its own prefix: its tmp_path name); a
test that stops the store (test_many_collectors.py) starts its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scaleout.servers import Postgres, SeaweedFS, postgres_server, seaweedfs_server


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
