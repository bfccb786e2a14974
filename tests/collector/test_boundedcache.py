from __future__ import annotations

from collector.boundedcache import BoundedCache


def test_once_full_an_unseen_key_is_refused_before_it_is_weighed() -> None:
    weighed: list[str] = []

    def weigh(key: str, value: int) -> int:
        weighed.append(key)
        return 100

    cache: BoundedCache[str, int] = BoundedCache(4, 1 << 20, weigh)
    for i in range(4):
        cache.offer(f"k{i}", i)
    cache.offer("full", 0)  # the first that does not fit: weighed, found not to fit, refused
    weighed.clear()
    for i in range(1000):  # a flood of keys seen once
        assert cache.get(f"flood{i}") is None
        cache.offer(f"flood{i}", i)
    assert weighed == []
    assert cache.info().refused == 1001
    assert [cache.get(f"k{i}") for i in range(4)] == [0, 1, 2, 3]  # the popular entries stayed
    # A key that comes back is admitted on its second sight, weighed then, and evicts the oldest.
    assert cache.get("flood999") is None
    cache.offer("flood999", 999)
    assert weighed == ["flood999"]
    assert cache.get("flood999") == 999
    assert cache.info().entries == 4


def test_bytes_bound_the_cache_as_well() -> None:
    cache: BoundedCache[str, str] = BoundedCache(1000, 64 * 1000, lambda k, v: 1000)
    for _ in range(2):  # the second sight admits a key even when the cache is full
        for i in range(200):
            if cache.get(f"k{i}") is None:  # offered after a miss, as the callers do
                cache.offer(f"k{i}", "v")
    info = cache.info()
    assert info.bytes <= 64 * 1000 - cache._door * 64 and info.entries == info.bytes // 1000
