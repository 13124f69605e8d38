"""One deadline per key, kept in one heap: what a single timer thread serves many waits with.

The delaying queue (an item's requeue-after) and the StatusPoller (each member's next poll)
both hold thousands of deadlines and wake one thread for the earliest. Changing or cancelling
a deadline leaves its old heap entry in place (removing from the middle of a heap is linear);
an entry is live only while it is the one recorded for its key, and stale ones are dropped as
they reach the top. Not thread-safe: each user already holds a lock around its own state.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    def __init__(self) -> None:
        # (at, sequence, key); the sequence keeps equal deadlines first-in first-out and tells
        # a key's live entry from the ones it superseded.
        self._heap: list[tuple[float, int, K]] = []
        self._live: dict[K, tuple[float, int]] = {}
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def at(self, key: K) -> float | None:
        """``key``'s deadline, or None when it has none."""
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def set(self, key: K, at: float) -> None:
        """``key`` is due at ``at``, whatever its deadline was."""
        entry = (at, next(self._sequence))
        self._live[key] = entry
        heapq.heappush(self._heap, (*entry, key))

    def set_earlier(self, key: K, at: float) -> bool:
        """``key`` is due at ``at`` unless it is due sooner already; True if that changed it."""
        current = self._live.get(key)
        if current is not None and current[0] <= at:
            return False
        self.set(key, at)
        return True

    def cancel(self, key: K) -> None:
        self._live.pop(key, None)

    def next_at(self) -> float | None:
        """The earliest deadline, or None when no key has one."""
        while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][:2]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[K]:
        """The keys due at ``now`` (deadline <= now), earliest first; they no longer have one."""
        due: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            at, sequence, key = heapq.heappop(self._heap)
            if self._live.get(key) == (at, sequence):
                del self._live[key]
                due.append(key)
        return due
