"""Private in-memory DuckDB connections: every reader and writer opens its own.

There is no database file: the lake is Parquet, so DuckDB's one-writer-per-file
lock never applies and any number of processes read while ingest writes.
"""

from __future__ import annotations

import duckdb

from aggregator.settings import Settings


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": settings.duckdb_memory_limit,
    }
    if settings.duckdb_threads > 0:
        config["threads"] = settings.duckdb_threads
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")  # our commands report their own progress; no bars in logs
    # A page reads the same days' files in several statements (a scope, its neighbours, the probes): their
    # footers are parsed once. DuckDB checks a file's modification time before it uses a cached footer (a file
    # replaced under the same name is read anew: tests/aggregator/test_db.py).
    con.execute("SET parquet_metadata_cache = true")
    if settings.lake_is_remote:
        from aggregator.objectstore import register

        register(con, settings.s3().filesystem())
    return con
