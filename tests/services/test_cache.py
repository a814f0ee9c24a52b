"""webapp.services.cache.LruCache: the per-process cache every web-app cache is built on."""

from __future__ import annotations

import threading
import time

from webapp.services.cache import LruCache


def test_least_recently_used_value_is_evicted_first():
    cache: LruCache[str] = LruCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # "a" is now the most recently used
    cache.put("c", "C")
    assert "b" not in cache and cache.get("a") == "A" and cache.get("c") == "C" and len(cache) == 2


def test_concurrent_callers_compute_a_missing_value_once():
    cache: LruCache[int] = LruCache(8)
    calls = []
    started = threading.Event()

    def compute():
        calls.append(1)
        started.set()
        time.sleep(0.3)  # the second caller arrives while this one computes
        return 42, True

    results = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", compute)))
    first.start()
    started.wait(5)
    results.append(cache.get_or_compute("k", compute))
    first.join()
    assert results == [42, 42] and len(calls) == 1


def test_a_value_computed_not_to_keep_is_returned_but_not_cached():
    cache: LruCache[str] = LruCache(8)
    assert cache.get_or_compute("k", lambda: ("stale", False)) == "stale"
    assert "k" not in cache
    assert cache.get_or_compute("k", lambda: ("fresh", True)) == "fresh" and cache.get("k") == "fresh"
