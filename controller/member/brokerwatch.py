"""Ends the status endpoint once its Flux broker is gone, so the lead pod can complete.

In a MiniCluster the status endpoint is a sidecar of the lead broker. When the
ensemble run ends the broker exits, but a pod completes only when all of its
containers have; a sidecar that kept serving would keep the member Running forever.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from controller.clock import Clock, RealClock

log = logging.getLogger(__name__)

T = TypeVar("T")


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


def connect_when_ready(connect: Callable[[], T], *, clock: Clock | None = None, interval: float = 1.0,
                       log_every: float = 30.0, timeout: float | None = None) -> T:
    """``connect()`` retried every ``interval`` seconds while it raises OSError (no broker socket
    yet, or a broker still loading its modules).

    The sidecar starts beside the broker, not after it: the Flux Operator's wrapper waits for a
    socket path its broker never uses (``<view>/run/flux/local``, not ``<config>/run/flux/local``),
    so the member's MiniCluster sets ``noWaitSocket`` and this wait takes its place. Any other
    error (the bindings missing) is raised at once; ``timeout`` bounds the wait (None: forever,
    as a container waits; SIGTERM still ends the process).
    """
    clock = clock or RealClock()
    started = last_logged = clock.now()
    while True:
        try:
            return connect()
        except OSError as err:
            now = clock.now()
            if timeout is not None and now - started >= timeout:
                raise
            if now == started or now - last_logged >= log_every:
                log.info("waiting for the Flux broker (%s): %s", os.environ.get("FLUX_URI", "FLUX_URI unset"), err)
                last_logged = now
        clock.sleep(interval)
