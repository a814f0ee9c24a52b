"""The one per-process cache helper: a bounded, thread-safe LRU map whose `get_or_compute` computes a missing value once.

Every in-process cache of the web app is one of these (candidate pages, rendered result fragments, chain versions,
resolved filter ids), so eviction, locking and the wait for a value another thread is computing are written once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")

WAIT_SECONDS = 30.0  # a caller waits this long (twice) for another thread computing the same key, then computes it


class LruCache(Generic[V]):
    """At most `size` values, least recently used evicted first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> V | None:
        with self.lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self.lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self._items.clear()

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], tuple[V, bool]], wait_seconds: float = WAIT_SECONDS
    ) -> V:
        """The cached value, or `compute()`'s; `compute` returns (value, keep) and a value is cached only when keep
        (e.g. not computed across an engine change). Concurrent callers for a key being computed wait for it rather
        than each computing it again; after two waits a caller computes it itself, leaving the first one's wait to it.
        """
        event, owner = None, False
        for _ in range(2):
            with self.lock:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                    return value
                event = self._computing.get(key)
                if event is None:
                    event = self._computing[key] = threading.Event()
                    owner = True
                    break
            event.wait(wait_seconds)
        try:
            value, keep = compute()
            if keep:
                self.put(key, value)
            return value
        finally:
            if owner:
                with self.lock:
                    self._computing.pop(key, None)
                event.set()
