"""A stop flag with waits that end early: how reflectors, informers and the leader elector
sleep between attempts without delaying shutdown (retry timing is in controller/backoff.py)."""
from __future__ import annotations

import threading

from controller.clock import Clock


class Stopper:
    """A stop flag whose waits end early when stop() is called (time from the injected clock)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._stopped = False
        self._woken = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wake(self) -> None:
        """End the current (or next) wait early without stopping: what it waited for changed."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def wait(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: until woken) unless woken or stopped; True when stopped."""
        return self.wait_until(None if seconds is None else self._clock.now() + seconds)

    def wait_until(self, deadline: float | None) -> bool:
        """As ``wait``, to a clock reading the caller already took: time that passes between
        that reading and this call is not added to the wait."""
        with self._cond:
            while not self._stopped and not self._woken:
                remaining = None if deadline is None else deadline - self._clock.now()
                if remaining is not None and remaining <= 0:
                    break
                self._clock.wait(self._cond, remaining)
            self._woken = False
            return self._stopped
