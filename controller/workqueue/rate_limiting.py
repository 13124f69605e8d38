"""A delaying queue whose re-adds are paced by a ``RateLimiter``.

Workers call ``add_rate_limited`` after a failure and ``forget`` after a success, so
back-off grows while an item keeps failing and resets once it works.
"""
from __future__ import annotations

from collections.abc import Hashable

from controller.clock import Clock
from controller.workqueue.delaying import DelayingQueue
from controller.workqueue.metrics import MetricsProvider
from controller.workqueue.queue import Queue, T
from controller.workqueue.rate_limiters import RateLimiter, default_controller_rate_limiter


class RateLimitingQueue(DelayingQueue[T]):
    """client-go's ``RateLimitingInterface``."""

    def __init__(self, rate_limiter: RateLimiter, name: str = "", *, queue: Queue[T] | None = None,
                 clock: Clock | None = None, metrics: MetricsProvider | None = None) -> None:
        super().__init__(name, queue=queue, clock=clock, metrics=metrics)
        self._rate_limiter = rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter assigns to this attempt."""
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset ``item``'s back-off; call when it was processed successfully."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self._rate_limiter.num_requeues(item)


def new_rate_limiting_queue(name: str = "", rate_limiter: RateLimiter | None = None,
                            clock: Clock | None = None,
                            metrics: MetricsProvider | None = None) -> RateLimitingQueue[Hashable]:
    """A rate-limited queue; the limiter defaults to ``default_controller_rate_limiter`` on ``clock``."""
    limiter = rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock)
    return RateLimitingQueue(limiter, name, clock=clock, metrics=metrics)
