"""Session-wide real servers for the scale-out tests (one PostgreSQL; S3 servers per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scaleout.servers import Postgres, postgres_server


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server
