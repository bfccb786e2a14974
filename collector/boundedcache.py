"""A least-recently-used cache bounded by entries *and* bytes, with an admission rule.

Used for the parsed user agents (:mod:`collector.useragent`) and for the parsed
pages and referrers (:mod:`collector.pipeline`): their keys are visitor-chosen
strings of up to a few kilobytes, so a count bound alone would let a flood of
long unique strings hold ``entries x length`` bytes. Each entry's key, value and
slot count against ``max_bytes`` (the caller weighs them: it knows what the
value shares with constants).

**Admission (a doorkeeper, as in TinyLFU).** While the cache has room, every
miss is admitted. Once it is full, a key is admitted only on its second miss
within the doorkeeper's window: the first miss records the key's hash in a set
of at most ``max_entries`` hashes (cleared when full, so old sightings age out).
A flood of strings seen once therefore neither pays an insertion and an
eviction per request nor pushes the popular entries out; a string that comes
back is cached on its second visit. The doorkeeper holds hashes only (salted
per process by Python, cut to 30 bits), never the strings; a hash collision
merely admits a key early. Its memory counts against ``max_bytes`` too: it is
given at most an eighth of the budget (and ``max_entries`` hashes at most), and
the entries the rest.

Used from one thread (the event loop): no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# One doorkeeper hash: a small int (28 bytes) and its share of the set's table (CPython 3.11,
# 64-bit; the table is at most 3/5 full, 16 bytes a slot), rounded up.
DOOR_BYTES = 64
_HASH_MASK = (1 << 30) - 1  # ints below 2**30 are the smallest int objects


@dataclass(slots=True)
class CacheInfo:
    entries: int
    bytes: int
    hits: int
    misses: int
    refused: int = 0  # misses not admitted (first sight while full)


class BoundedCache(Generic[K, V]):
    def __init__(self, max_entries: int, max_bytes: int, weigh: Callable[[K, V], int]) -> None:
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._max_entries = max_entries
        self._door = max(1, min(max_entries, max_bytes // 8 // DOOR_BYTES))
        self._max_bytes = max_bytes - self._door * DOOR_BYTES
        self._weigh = weigh
        self._seen: set[int] = set()
        self._full = False  # has an entry ever not fit (by count or bytes)?
        self._bytes = self._hits = self._misses = self._refused = 0

    def get(self, key: K) -> V | None:
        """The cached value (marked most recently used), or ``None`` on a miss (counted)."""
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
            self._hits += 1
            return hit[0]
        self._misses += 1
        return None

    def offer(self, key: K, value: V) -> None:
        """After a miss: keep ``value`` if the admission rule and the bounds allow it."""
        if self._max_entries <= 0:
            return
        data = self._data
        size = 0
        if not self._full:
            size = self._weigh(key, value)
            if size > self._max_bytes:
                return
            # Full for good from the first time an entry would not fit (a cache that filled stays so).
            self._full = len(data) >= self._max_entries or self._bytes + size > self._max_bytes
        if self._full:
            # The doorkeeper decides before the entry is weighed: under a flood of unseen keys most
            # are refused, and weighing one (a dozen sys.getsizeof calls) would be wasted on them.
            h = hash(key) & _HASH_MASK
            seen = self._seen
            if h not in seen:
                if len(seen) >= self._door:
                    seen.clear()
                seen.add(h)
                self._refused += 1
                return
            seen.discard(h)
            if not size:
                size = self._weigh(key, value)
                if size > self._max_bytes:
                    return
        data[key] = (value, size)
        self._bytes += size
        while self._bytes > self._max_bytes or len(data) > self._max_entries:
            _, (_, old) = data.popitem(last=False)
            self._bytes -= old

    def info(self) -> CacheInfo:
        return CacheInfo(len(self._data), self._bytes, self._hits, self._misses, self._refused)
