from __future__ import annotations

from pathlib import Path

from aggregator.manifest import BatchRecord, Manifest


def test_a_torn_last_line_is_an_uncommitted_batch(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    first = BatchRecord("b1", ("s1.jsonl",), (("events/x.parquet", "events/site=a/day=2026-11-20/x.parquet"),), 3, 0)
    Manifest(path).commit(first)
    with open(path, "ab") as f:
        f.write(b'{"batch":"b2","segm')  # crash in the middle of an append
    loaded = Manifest.load(path)
    assert set(loaded.batches) == {"b1"} and [r.segments for r in loaded.batches.values()] == [("s1.jsonl",)]
    loaded.commit(BatchRecord("b3", ("s3.jsonl",), (), 0, 1))
    assert set(Manifest.load(path).batches) == {"b1", "b3"}
    loaded.truncate()
    assert Manifest.load(path).batches == {} and path.read_bytes() == b""
