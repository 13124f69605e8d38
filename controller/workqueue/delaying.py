"""A work queue that can add an item later, for requeue-after and back-off.

All waiting items live in one heap served by one timer thread, so thousands of
pending requeues cost one thread, not one timer each. The same thread refreshes the
unfinished-work gauges, which need a periodic tick anyway.
"""
from __future__ import annotations

import heapq
import itertools
import math
import threading

from controller.clock import Clock
from controller.workqueue.metrics import MetricsProvider
from controller.workqueue.queue import Queue, T

UNFINISHED_WORK_UPDATE_PERIOD = 0.5


class DelayingQueue(Queue[T]):
    """client-go's ``DelayingInterface``: ``add_after`` on top of the plain queue."""

    def __init__(self, name: str = "", *, clock: Clock | None = None,
                 metrics: MetricsProvider | None = None) -> None:
        super().__init__(name, clock=clock, metrics=metrics)
        self._timer_cond = threading.Condition()
        # Heap of (ready_at, sequence, item); the sequence keeps equal deadlines FIFO and
        # marks superseded entries: only the entry recorded in _waiting is live.
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, tuple[float, int]] = {}
        self._sequence = itertools.count()
        self._timer_stopped = False
        self._timer = threading.Thread(target=self._run_timer, name=f"workqueue-timer-{name}",
                                       daemon=True)
        self._timer.start()

    def add_after(self, item: T, seconds: float) -> None:
        """Add ``item`` once ``seconds`` of clock time have passed (now, if ``seconds`` <= 0).

        If ``item`` is already waiting, the earlier of the two deadlines wins.
        """
        if self.shutting_down():
            return
        try:
            hash(item)
        except TypeError:
            raise self._unhashable(item) from None
        self._record_retry()
        if seconds <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + seconds
        with self._timer_cond:
            current = self._waiting.get(item)
            if current is not None and current[0] <= ready_at:
                return
            entry = (ready_at, next(self._sequence))
            self._waiting[item] = entry
            heapq.heappush(self._heap, (*entry, item))
            self._timer_cond.notify()

    def waiting_count(self) -> int:
        """Items scheduled by ``add_after`` that are not yet due."""
        with self._timer_cond:
            return len(self._waiting)

    def shutdown(self) -> None:
        super().shutdown()
        self._stop_timer()

    def shutdown_with_drain(self) -> None:
        super().shutdown_with_drain()
        self._stop_timer()

    def _stop_timer(self) -> None:
        with self._timer_cond:
            self._timer_stopped = True
            self._timer_cond.notify()
        if threading.current_thread() is not self._timer:
            self._timer.join()

    def _run_timer(self) -> None:
        # Without metrics there is nothing to tick for: sleep until the next deadline only.
        period = UNFINISHED_WORK_UPDATE_PERIOD if self._records_metrics() else math.inf
        next_metrics_update = self._clock.now() + period
        while True:
            with self._timer_cond:
                if self._timer_stopped:
                    return
                now = self._clock.now()
                due = self._pop_due(now)
                if not due:
                    wake_at = min(next_metrics_update, self._heap[0][0] if self._heap else math.inf)
                    if wake_at > now:
                        timeout = None if wake_at == math.inf else wake_at - now
                        self._clock.wait(self._timer_cond, timeout)
                        continue
            for item in due:
                self.add(item)
            if now >= next_metrics_update:
                self.update_unfinished_work()
                next_metrics_update = now + period

    def _pop_due(self, now: float) -> list[T]:
        """Remove and return the items whose deadline has passed, earliest first."""
        due: list[T] = []
        while self._heap and self._heap[0][0] <= now:
            ready_at, sequence, item = heapq.heappop(self._heap)
            if self._waiting.get(item) == (ready_at, sequence):
                del self._waiting[item]
                due.append(item)
        return due
