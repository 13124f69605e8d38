"""A FIFO work queue that de-duplicates items and never hands one item to two workers.

Controllers enqueue object keys on every event; what matters is that each key is
reconciled after its latest event, not once per event. So an item added again
while still waiting is merged with the waiting copy (the *dirty* set), and an item
added while a worker holds it is parked until that worker calls ``done`` (the
*processing* set), then queued once more.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from controller.clock import Clock, RealClock
from controller.workqueue.metrics import MetricsProvider, NoopQueueMetrics, queue_metrics

T = TypeVar("T", bound=Hashable)


class Queue(Generic[T]):
    """client-go's ``workqueue.Interface``: add, get, done, shutdown."""

    def __init__(self, name: str = "", *, clock: Clock | None = None,
                 metrics: MetricsProvider | None = None) -> None:
        self.name = name
        self._clock: Clock = clock or RealClock()
        self._metrics = queue_metrics(name, metrics, self._clock)
        self._cond = threading.Condition()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._draining = False

    def add(self, item: T) -> None:
        """Queue ``item`` unless it is already waiting; ignored once shutting down."""
        with self._cond:
            try:
                if self._shutting_down or item in self._dirty:
                    return
            except TypeError:
                raise unhashable_error(self.name, item) from None
            self._metrics.add(item)
            self._dirty.add(item)
            if item in self._processing:
                return
            self._queue.append(item)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> tuple[T | None, bool]:
        """Take the oldest item, blocking until one exists.

        Returns ``(item, False)``; ``(None, True)`` once shut down with nothing left
        queued (queued items are still handed out after shutdown); ``(None, False)``
        when ``timeout`` seconds of clock time pass first. The caller must ``done(item)``.
        """
        with self._cond:
            deadline = None if timeout is None else self._clock.now() + timeout
            while not self._queue and not self._shutting_down:
                remaining = None if deadline is None else deadline - self._clock.now()
                if remaining is not None and remaining <= 0:
                    return None, False
                self._clock.wait(self._cond, remaining)
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item: T) -> None:
        """Release ``item``; if it was added while being processed, queue it again now."""
        with self._cond:
            self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            elif self._draining and not self._processing:
                self._cond.notify_all()  # the drainer; getters need no wake-up for this

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def shutdown(self) -> None:
        """Stop accepting items and wake every blocked ``get``; does not wait for workers."""
        with self._cond:
            self._draining = False
            self._shutting_down = True
            self._cond.notify_all()

    def shutdown_with_drain(self) -> None:
        """Stop accepting items, then block until every item handed out is ``done``.

        A concurrent ``shutdown()`` ends the wait early.
        """
        with self._cond:
            self._draining = True
            self._shutting_down = True
            self._cond.notify_all()
            while self._processing and self._draining:
                self._clock.wait(self._cond, None)

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def update_unfinished_work(self) -> None:
        """Refresh the unfinished-work gauges; called periodically by the delaying queue's timer."""
        with self._cond:
            self._metrics.update_unfinished_work()

    @property
    def records_metrics(self) -> bool:
        """Whether ``update_unfinished_work`` publishes anything (a named queue with a provider)."""
        return not isinstance(self._metrics, NoopQueueMetrics)


def unhashable_error(queue_name: str, item: object) -> TypeError:
    return TypeError(f"workqueue {queue_name!r}: items must be hashable (e.g. a 'namespace/name' "
                     f"key), got {type(item).__name__}")
