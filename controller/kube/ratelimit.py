"""Client-side request rate limit (client-go's flowcontrol token bucket), off by default.

controller-runtime's current release turns client-go's limit (5 qps, burst 10) off when it
builds a config (QPS -1): the API server's Priority and Fairness already queues and sheds
load per client, and a fixed client-side limit only slows a busy controller. The flags keep
the limit available for a cluster without it, or to cap this operator below its share.
"""
from __future__ import annotations

import threading

from controller.clock import Clock, RealClock
from controller.workqueue.rate_limiters import BucketRateLimiter


class RequestRateLimiter:
    """``burst`` requests at once, then ``qps`` per second; a request beyond waits its turn."""

    def __init__(self, qps: float, burst: int, clock: Clock | None = None) -> None:
        self._clock = clock or RealClock()
        self._bucket = BucketRateLimiter(qps, burst, self._clock)
        self._turn = threading.Condition()  # never notified: a timed wait on the injected clock

    def wait(self) -> None:
        delay = self._bucket.when(None)
        if delay > 0:
            with self._turn:
                self._clock.wait(self._turn, delay)
