"""Ends the status endpoint once its Flux broker is gone, so the lead pod can complete.

In a MiniCluster the status endpoint is a sidecar of the lead broker. When the
ensemble run ends the broker exits, but a pod completes only when all of its
containers have; a sidecar that kept serving would keep the member Running forever.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from controller.clock import Clock, RealClock

log = logging.getLogger(__name__)


class BrokerWatch:
    """Sets ``stop`` after ``misses`` failed liveness checks in a row, ``interval`` apart."""

    def __init__(self, alive: Callable[[], bool], stop: threading.Event, *, interval: float = 5.0,
                 misses: int = 3, clock: Clock | None = None) -> None:
        if interval <= 0 or misses < 1:
            raise ValueError(f"interval must be > 0 and misses >= 1, got {interval} and {misses}")
        self._alive = alive
        self._stop = stop
        self._interval = interval
        self._misses = misses
        self._clock = clock or RealClock()

    def run(self) -> None:
        missed = 0
        while not self._stop.is_set():
            self._clock.sleep(self._interval)
            try:
                healthy = self._alive()
            except Exception:  # a broker that is going away fails in many ways
                healthy = False
            missed = 0 if healthy else missed + 1
            if missed >= self._misses:
                log.info("the Flux broker is gone (%d checks failed); stopping the status endpoint", missed)
                self._stop.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="broker-watch", daemon=True)
        thread.start()
        return thread
