"""Bounded polling shared by unit and integration tests.

Tests wait for states that other threads, processes or the API server reach. A timeout
must say which state never came and what was last seen, so the failure explains itself.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from controller.clock import FakeClock

T = TypeVar("T")

LAST_VALUE_CHARS = 500


def wait_for(predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.01) -> T:
    """Return the first truthy value of ``predicate()``, checked every ``interval`` seconds.

    Fails with an AssertionError naming ``what`` and the last value seen once ``timeout``
    seconds have passed (the predicate is checked once more after the deadline).
    """
    return _poll(predicate, bool, timeout, what, interval)


def wait_for_value(read: Callable[[], T], expected: T, timeout: float, what: str, *,
                   interval: float = 0.01) -> None:
    """Wait until ``read()`` equals ``expected``; a timeout reports the last value read."""
    _poll(read, lambda value: value == expected, timeout, f"{what} to be {expected!r}", interval)


def wait_for_waiters(clock: FakeClock, count: int, timeout: float = 2.0) -> None:
    """Wait until ``count`` threads sleep on ``clock``: stepping it earlier would wake nobody."""
    wait_for_value(lambda: clock.waiter_count, count, timeout, "the threads waiting on the fake clock")


def _poll(read: Callable[[], T], accept: Callable[[T], bool], timeout: float, what: str,
          interval: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            seen = repr(value)
            if len(seen) > LAST_VALUE_CHARS:
                seen = seen[:LAST_VALUE_CHARS] + "..."
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value seen: {seen}")
        time.sleep(interval)
