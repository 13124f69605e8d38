"""Retry timing, in one place: exponential delays with a cap, and jitter from injected randomness.

Informers' reconnects, the workqueue's per-item rate limiter, the status poller's failed
members and the scaler's conflict retries all wait ``base * 2**attempt`` (capped); what
differs is only how each spreads its waits, so that many retriers do not act in step.
Randomness is a ``() -> float in [0, 1)`` argument, so tests fix it.
"""
from __future__ import annotations

from typing import Callable

Random = Callable[[], float]


def exponential(base: float, attempt: int, cap: float, factor: float = 2.0) -> float:
    """``base * factor**attempt``, at most ``cap``; attempt 0 waits ``base``."""
    try:
        return min(base * float(factor) ** attempt, cap)
    except OverflowError:  # 2.0**1024 and beyond: far past any cap
        return cap


def full_jitter(ceiling: float, random: Random) -> float:
    """Anywhere in ``[0, ceiling)``: retriers that failed together spread over the whole window."""
    return ceiling * random()


def proportional_jitter(delay: float, jitter: float, random: Random) -> float:
    """``delay`` stretched by up to ``jitter`` times itself (client-go's ``wait.Jitter``)."""
    return delay * (1.0 + jitter * random())


class Backoff:
    """Delays for consecutive failures of one thing (a watch): exponential steps from ``initial``
    capped at ``maximum``, each stretched by ``jitter``; ``reset`` once it works again."""

    def __init__(self, random: Random, *, initial: float = 0.8, maximum: float = 30.0,
                 factor: float = 2.0, jitter: float = 1.0) -> None:
        self._random = random
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._jitter = jitter
        self._failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        step = (self._initial if self._failures == 0
                else exponential(self._initial, self._failures, self._maximum, self._factor))
        self._failures += 1
        return proportional_jitter(step, self._jitter, self._random)

    def reset(self) -> None:
        self._failures = 0
