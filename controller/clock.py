"""Time, injected.

Every component that waits or measures durations takes a ``Clock`` so that tests
drive time with a fake one (``tests/fakes.py``) instead of sleeping.
"""
from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds, for deadlines and durations."""

    def wall(self) -> float:
        """Seconds since the epoch, for timestamps shown to users."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    def wait(self, condition: threading.Condition, timeout: float | None) -> bool:
        """``condition.wait(timeout)`` measured on this clock (caller holds the lock)."""


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, condition: threading.Condition, timeout: float | None) -> bool:
        return condition.wait(timeout)


class ScaledClock:
    """Real time run ``speed`` times faster, so a simulated ``sleep 10`` job takes 10/speed s of wall time.

    ``now`` starts at the real monotonic time and advances ``speed`` seconds per real second;
    ``wall`` stays the real epoch time, since users read it.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed: must be > 0, got {speed}")
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.speed

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait(self, condition: threading.Condition, timeout: float | None) -> bool:
        return condition.wait(None if timeout is None else timeout / self.speed)
