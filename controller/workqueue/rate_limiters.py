"""How long to wait before retrying an item, per item and overall.

Per-item exponential back-off keeps one broken object from hot-looping; the overall
token bucket keeps a burst of failures from flooding the API server.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Protocol

from controller.backoff import exponential
from controller.clock import Clock, RealClock


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds to wait before ``item`` is retried; records the attempt."""

    def forget(self, item: Hashable) -> None:
        """Stop tracking ``item`` (it succeeded), so its next failure starts afresh."""

    def num_requeues(self, item: Hashable) -> int:
        """Failures recorded for ``item`` since it was last forgotten."""


class ItemExponentialFailureRateLimiter:
    """Waits ``base_delay * 2**failures`` for an item, capped at ``max_delay``."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay < 0:
            raise ValueError(f"ItemExponentialFailureRateLimiter base_delay must be >= 0, got {base_delay}")
        if max_delay < base_delay:
            raise ValueError("ItemExponentialFailureRateLimiter max_delay must be >= base_delay, "
                             f"got max_delay={max_delay} base_delay={base_delay}")
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            exponent = self._failures.get(item, 0)
            self._failures[item] = exponent + 1
        return exponential(self._base_delay, exponent, self._max_delay)

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter:
    """A token bucket shared by all items: ``burst`` retries at once, then ``qps`` per second.

    Reservations may drive the bucket below zero, so each retry beyond the burst is
    spaced one ``1/qps`` after the previous one rather than all landing together.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        if qps <= 0:
            raise ValueError(f"BucketRateLimiter qps must be > 0, got {qps}")
        if burst < 1:
            raise ValueError(f"BucketRateLimiter burst must be >= 1, got {burst}")
        self._qps = qps
        self._burst = float(burst)
        self._clock: Clock = clock or RealClock()
        self._tokens = float(burst)
        self._last = self._clock.now()
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            self._tokens = self._refilled() - 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._qps

    def try_take(self) -> bool:
        """Take a token if one is there now, without reserving: for a limit that refuses what is
        over it (a refused request takes nothing, so a flood does not push the bucket ever lower)."""
        with self._lock:
            self._tokens = self._refilled()
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def _refilled(self) -> float:
        """The tokens now (caller holds the lock)."""
        now = self._clock.now()
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        return min(self._burst, self._tokens + elapsed * self._qps)

    def forget(self, item: Hashable) -> None:
        """Nothing per item to forget: the bucket is shared."""

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """Combines limiters by taking the longest wait any of them asks for."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self._limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> RateLimiter:
    """client-go's controller default: 5 ms..1000 s per item, and 10 qps / burst 100 overall."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(qps=10.0, burst=100, clock=clock))
