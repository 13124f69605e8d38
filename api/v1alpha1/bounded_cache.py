"""A least-recently-used cache bounded by the bytes of its keys, not by their number.

Keys here are tenants' texts (each member's ensemble.yaml): a cache of N entries holds
N times whatever size they chose, so the bound that matters is bytes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteBoundedCache(Generic[K, V]):
    """Maps ``key`` to ``compute(key)``, keeping entries while their ``size(key)`` sum stays within
    ``max_bytes``; a key larger than ``max_bytes / 8`` is computed every time, never kept."""

    def __init__(self, compute: Callable[[K], V], size: Callable[[K], int], max_bytes: int) -> None:
        self._compute = compute
        self._size = size
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def get(self, key: K) -> V:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = self._compute(key)  # outside the lock: a slow computation blocks no other key
        size = self._size(key)
        if size > self.max_bytes // 8:
            return value
        with self._lock:
            if key not in self._entries:
                self._entries[key] = value
                self._bytes += size
            while self._bytes > self.max_bytes:
                old, _ = self._entries.popitem(last=False)
                self._bytes -= self._size(old)
        return value
