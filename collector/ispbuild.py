"""Build a MaxMind-format ASN database from IP-range CSVs (``first,last,asn,organisation``).

The output has the GeoLite2-ASN record layout (``autonomous_system_number``,
``autonomous_system_organization``) in an IPv6 tree with IPv4 at ``::/96`` (and
aliased at ``::ffff:0:0/96``), so the same reader serves our file and an
operator's GeoLite2-ASN. Tree nodes, data section and file format are
``mmdb-writer``'s; only the insertion loop is ours (see :func:`_insert`).

Overlaps are resolved before anything is inserted, deterministically: for each
address the **narrowest** range that covers it wins; between equally wide
ranges, the one that comes **later** in the input (later file, later row) wins.
Adjacent ranges with the same AS number and name are merged, which keeps the
tree small. Organisation names are kept as the source spells them, like a real
GeoLite2-ASN; the reader normalises names for display (collector/orgnames.py).
"""

from __future__ import annotations

import csv
import gc
import gzip
import hashlib
import heapq
import io
import json
import lzma
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mmdb_writer import MMDBWriter, SearchTreeLeaf, SearchTreeNode, TreeWriter

from collector.isp import ATTRIBUTION, BUNDLE_MANIFEST, BUNDLE_NAME

Progress = Callable[[str], None]

DATABASE_TYPE = "GeoLite2-ASN"
DESCRIPTION = f"OneCloud ASN database (GeoLite2-ASN layout). {ATTRIBUTION}"
_V4_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96, where dual-stack sockets put IPv4 clients


class Row(NamedTuple):  # a tuple: half a million are made per build
    first: int  # in the 128-bit space: IPv4 a.b.c.d is ::a.b.c.d, as in the tree
    last: int
    asn: int
    org: str


@dataclass(frozen=True, slots=True)
class BuildStats:
    rows: int
    skipped: int
    ranges: int  # disjoint ranges after overlap resolution and merging
    networks: int  # CIDR blocks inserted
    nodes: int
    seconds: float


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    if path.suffix == ".xz":
        return io.TextIOWrapper(lzma.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller's with


def _addr(text: str) -> tuple[int, int]:
    """(value, family) of an address; inet_pton is ~10x faster than ipaddress here."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    return int.from_bytes(socket.inet_pton(family, text), "big"), family


def read_rows(paths: Iterable[Path], skipped: list[int] | None = None) -> Iterator[Row]:
    """Rows of every file, in order. Malformed rows are counted in ``skipped``, not fatal."""
    bad = 0
    for path in paths:
        with _open_text(path) as fh:
            for rec in csv.reader(fh):
                try:
                    first, fam1 = _addr(rec[0])
                    last, fam2 = _addr(rec[1])
                    asn = int(rec[2])
                except (IndexError, ValueError, OSError):
                    bad += 1
                    continue
                if fam1 != fam2 or first > last or not 0 <= asn < 1 << 32:
                    bad += 1
                    continue
                yield Row(first, last, asn, rec[3] if len(rec) > 3 else "")
    if skipped is not None:
        skipped.append(bad)


def resolve_overlaps(rows: list[Row]) -> list[Row]:
    """Disjoint, sorted ranges: narrowest wins, then later input wins; equal neighbours merged."""
    if all(a.first <= b.first for a, b in zip(rows, rows[1:], strict=False)):
        order: Iterable[int] = range(len(rows))  # real data comes sorted: skip the sort
    else:
        order = sorted(range(len(rows)), key=lambda i: rows[i].first)  # stable: ties keep input order
    out: list[Row] = []
    cluster: list[int] = []  # indexes of rows that overlap one another, transitively
    end = -1
    for i in order:
        if cluster and rows[i].first > end:
            out.extend(_sweep(rows, cluster))
            cluster = []
        cluster.append(i)
        end = max(end, rows[i].last) if len(cluster) > 1 else rows[i].last
    if cluster:
        out.extend(_sweep(rows, cluster))
    return _merge(out)


def _sweep(rows: list[Row], cluster: list[int]) -> list[Row]:
    """Split overlapping rows at every boundary; the active row with the smallest (width, -index) wins."""
    if len(cluster) == 1:
        return [rows[cluster[0]]]
    out: list[Row] = []
    active: list[tuple[int, int]] = []  # heap of (width, -index)
    points = sorted({rows[i].first for i in cluster} | {rows[i].last + 1 for i in cluster})
    s = 0
    for pos, nxt in zip(points, points[1:], strict=False):
        while s < len(cluster) and rows[cluster[s]].first <= pos:
            i = cluster[s]
            heapq.heappush(active, (rows[i].last - rows[i].first, -i))
            s += 1
        while active and rows[-active[0][1]].last < pos:
            heapq.heappop(active)  # lazily drop rows that ended before this piece
        if active:
            win = rows[-active[0][1]]
            out.append(Row(pos, nxt - 1, win.asn, win.org))
    return out


def _merge(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    for r in rows:
        if out and out[-1].last + 1 == r.first and out[-1].asn == r.asn and out[-1].org == r.org:
            out[-1] = Row(out[-1].first, r.last, r.asn, r.org)
        else:
            out.append(r)
    return out


def range_to_cidrs(first: int, last: int) -> Iterator[tuple[int, int]]:
    """(network, prefix length) blocks covering [first, last] in the 128-bit space, in order."""
    while first <= last:
        # Largest block aligned at ``first`` that does not pass ``last``.
        size_bits = (first & -first).bit_length() - 1 if first else 128
        span = (last - first + 1).bit_length() - 1
        bits = min(size_bits, span)
        yield first, 128 - bits
        first += 1 << bits


def _insert(root: SearchTreeNode, blocks: Iterable[tuple[int, int, SearchTreeLeaf]]) -> int:
    """Insert disjoint, sorted CIDR blocks; returns how many.

    ``MMDBWriter.insert_network`` walks all 128 bits per block through netaddr
    objects and bit strings (~90 s for the full data). Blocks here are disjoint
    and sorted, so no supernet leaf is ever met, and consecutive blocks share
    most of their path: we keep the last path and restart from the common
    prefix, creating each node once (~10x faster, same tree).
    """
    path: list[SearchTreeNode] = [root]  # path[d] = node at depth d of the previous block
    prev = -1
    count = 0
    for net, plen, leaf in blocks:
        common = 128 - (net ^ prev).bit_length() if prev >= 0 else 0
        depth = min(common, plen - 1, len(path) - 1)
        del path[depth + 1 :]
        node = path[depth]
        for d in range(depth, plen - 1):
            bit = (net >> (127 - d)) & 1
            child = node.right if bit else node.left
            if type(child) is not SearchTreeNode:
                child = SearchTreeNode()
                if bit:
                    node.right = child
                else:
                    node.left = child
            node = child
            path.append(node)
        if (net >> (128 - plen)) & 1:
            node.right = leaf
        else:
            node.left = leaf
        prev = net
        count += 1
    return count


def _alias_ipv4_mapped(root: SearchTreeNode) -> None:
    """Point ::ffff:0:0/96 at the ::/96 IPv4 subtree (shared node, no extra size), as GeoLite2 does."""
    v4 = root
    for _ in range(96):
        nxt = v4.left
        if type(nxt) is not SearchTreeNode:
            return  # no IPv4 data
        v4 = nxt
    node = root
    for d in range(95):
        bit = (_V4_MAPPED >> (127 - d)) & 1
        child = node.right if bit else node.left
        if type(child) is not SearchTreeNode:
            child = SearchTreeNode()
            if bit:
                node.right = child
            else:
                node.left = child
        node = child
    node.right = v4  # bit 95 of ::ffff:0:0 is 1


def build(
    csv_paths: Iterable[Path],
    output: Path,
    *,
    progress: Progress | None = None,
    build_epoch: int | None = None,
) -> BuildStats:
    """Build ``output`` (.mmdb) from the CSVs; writes to a temp name, then renames."""
    # The build makes millions of small objects that live until the end: the
    # cyclic GC would rescan them again and again (~30% of the time) for nothing.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(csv_paths, output, progress or (lambda _msg: None), build_epoch)
    finally:
        if gc_was_enabled:
            gc.enable()


def _build(csv_paths: Iterable[Path], output: Path, say: Progress, build_epoch: int | None) -> BuildStats:
    t0 = time.monotonic()
    skipped: list[int] = []
    rows: list[Row] = []
    for row in read_rows(csv_paths, skipped):
        rows.append(row)
        if len(rows) % 100_000 == 0:
            say(f"read {len(rows):,} ranges")
    say(f"read {len(rows):,} ranges ({skipped[0]:,} malformed rows skipped)")
    ranges = resolve_overlaps(rows)
    say(f"{len(ranges):,} disjoint ranges after overlaps and merging")

    writer = MMDBWriter(
        ip_version=6,
        database_type=DATABASE_TYPE,
        languages=["en"],
        description={"en": DESCRIPTION},
        ipv4_compatible=True,
        int_type="u32",
    )
    leaves: dict[tuple[int, str], SearchTreeLeaf] = {}

    def blocks() -> Iterator[tuple[int, int, SearchTreeLeaf]]:
        for n, r in enumerate(ranges, 1):
            # Names stay as the registry spells them (GeoLite2-ASN fidelity); the
            # reader normalises any database's names for display (collector/orgnames.py).
            name = r.org
            key = (r.asn, name)
            leaf = leaves.get(key)
            if leaf is None:
                record: dict[str, int | str] = {"autonomous_system_number": r.asn}
                if name:
                    record["autonomous_system_organization"] = name
                leaf = leaves[key] = SearchTreeLeaf(record)
            for net, plen in range_to_cidrs(r.first, r.last):
                yield net, plen, leaf
            if n % 50_000 == 0:
                say(f"inserted {n:,}/{len(ranges):,} ranges")

    networks = _insert(writer.tree, blocks())
    _alias_ipv4_mapped(writer.tree)
    say(f"inserted {networks:,} networks; writing {output}")
    meta = writer._build_meta()
    if build_epoch is not None:
        meta["build_epoch"] = build_epoch
    tree_writer = TreeWriter(writer.tree, meta, writer.int_type, writer.float_type)
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    tree_writer.write(str(tmp))
    tmp.replace(output)
    stats = BuildStats(
        rows=len(rows),
        skipped=skipped[0],
        ranges=len(ranges),
        networks=networks,
        nodes=tree_writer._node_counter,
        seconds=time.monotonic() - t0,
    )
    say(f"done: {stats.nodes:,} nodes, {output.stat().st_size / 1e6:.1f} MB in {stats.seconds:.1f} s")
    return stats


def write_bundle(mmdb: Path, dest: Path, *, source: str) -> Path:
    """Compress ``mmdb`` to ``dest/asn.mmdb.xz`` plus the manifest the reader checks the cache against."""
    data = mmdb.read_bytes()
    dest.mkdir(parents=True, exist_ok=True)
    xz = dest / BUNDLE_NAME
    tmp = xz.with_name(xz.name + ".tmp")
    tmp.write_bytes(lzma.compress(data, preset=9))
    tmp.replace(xz)
    manifest = {
        "file": BUNDLE_NAME,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "source": source,
        "licence": "CC BY 4.0: DB-IP.com, RouteViews, NRO (see the *LICENSE files here)",
    }
    (dest / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return xz
