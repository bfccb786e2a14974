"""The readers' DuckDB connections (aggregator/db.py): Parquet footers are cached, never served stale."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from aggregator.db import connect
from aggregator.settings import Settings


def test_a_file_replaced_under_its_name_is_read_anew(tmp_path: Path) -> None:
    con = connect(Settings(data_dir=tmp_path / "d"))
    assert con.execute("SELECT current_setting('parquet_metadata_cache')").fetchone() == (True,)
    path, new = tmp_path / "f.parquet", tmp_path / "g.parquet"
    duckdb.execute(f"COPY (SELECT range AS x FROM range(10)) TO '{path}' (FORMAT parquet)")
    assert con.execute(f"SELECT count(*), sum(x) FROM '{path}'").fetchone() == (10, 45)
    duckdb.execute(f"COPY (SELECT range AS x, 'y' AS y FROM range(1000)) TO '{new}' (FORMAT parquet)")
    os.replace(new, path)  # as a rebuilt file is published: renamed over the old one
    assert con.execute(f"SELECT count(*), sum(x), min(y) FROM '{path}'").fetchone() == (1000, 499500, "y")
    con.close()
