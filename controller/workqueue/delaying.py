"""A work queue that can add an item later, for requeue-after and back-off.

As client-go's delaying queue, it wraps a plain queue (given, or a new one) and adds
``add_after``: all waiting items live in one heap (``Deadlines``) served by one timer thread, so
thousands of pending requeues cost one thread, not one timer each. The same thread
refreshes the wrapped queue's unfinished-work gauges, which need a periodic tick anyway.
The timer starts with ``start()``; items added later before that wait in the heap.
"""
from __future__ import annotations

import math
import threading
from typing import Generic

from controller.clock import Clock, RealClock
from controller.workqueue.deadlines import Deadlines
from controller.workqueue.metrics import MetricsProvider, retry_metric
from controller.workqueue.queue import Queue, T, unhashable_error

UNFINISHED_WORK_UPDATE_PERIOD = 0.5


class DelayingQueue(Generic[T]):
    """client-go's ``DelayingInterface``: ``add_after`` on top of a plain queue.

    ``queue`` is the queue items go to once due (a new ``Queue(name)`` on ``clock`` with
    ``metrics`` when None); ``metrics`` also counts retries under ``name``.
    """

    def __init__(self, name: str = "", *, queue: Queue[T] | None = None, clock: Clock | None = None,
                 metrics: MetricsProvider | None = None) -> None:
        self.name = name
        self._clock: Clock = clock or RealClock()
        self._queue: Queue[T] = queue if queue is not None else Queue(name, clock=self._clock, metrics=metrics)
        self._retries = retry_metric(name, metrics)
        self._timer_cond = threading.Condition()
        self._deadlines: Deadlines[T] = Deadlines()  # equal deadlines come due first-in first-out
        self._timer_stopped = False
        self._timer: threading.Thread | None = None

    def start(self) -> None:
        """Start the timer thread that moves due items to the queue; once only."""
        with self._timer_cond:
            if self._timer is not None or self._timer_stopped:
                return
            self._timer = threading.Thread(target=self._run_timer, name=f"workqueue-timer-{self.name}",
                                           daemon=True)
        self._timer.start()

    # --- the wrapped queue ------------------------------------------------------------

    def add(self, item: T) -> None:
        self._queue.add(item)

    def get(self, timeout: float | None = None) -> tuple[T | None, bool]:
        return self._queue.get(timeout)

    def done(self, item: T) -> None:
        self._queue.done(item)

    def __len__(self) -> int:
        return len(self._queue)

    def shutting_down(self) -> bool:
        return self._queue.shutting_down()

    def update_unfinished_work(self) -> None:
        self._queue.update_unfinished_work()

    # --- delays -----------------------------------------------------------------------

    def add_after(self, item: T, seconds: float) -> None:
        """Add ``item`` once ``seconds`` of clock time have passed (now, if ``seconds`` <= 0).

        If ``item`` is already waiting, the earlier of the two deadlines wins.
        """
        if self.shutting_down():
            return
        try:
            hash(item)
        except TypeError:
            raise unhashable_error(self.name, item) from None
        with self._timer_cond:
            self._retries.inc()
        if seconds <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + seconds
        with self._timer_cond:
            if self._deadlines.set_earlier(item, ready_at):
                self._timer_cond.notify()

    def shutdown(self) -> None:
        self._queue.shutdown()
        self._stop_timer()

    def shutdown_with_drain(self) -> None:
        self._queue.shutdown_with_drain()
        self._stop_timer()

    def _stop_timer(self) -> None:
        with self._timer_cond:
            self._timer_stopped = True
            self._timer_cond.notify()
            timer = self._timer
        if timer is not None and threading.current_thread() is not timer:
            timer.join()

    def _run_timer(self) -> None:
        # Without metrics there is nothing to tick for: sleep until the next deadline only.
        period = UNFINISHED_WORK_UPDATE_PERIOD if self._queue.records_metrics else math.inf
        next_metrics_update = self._clock.now() + period
        while True:
            with self._timer_cond:
                if self._timer_stopped:
                    return
                now = self._clock.now()
                due = self._deadlines.pop_due(now)
                if not due:
                    next_at = self._deadlines.next_at()
                    wake_at = min(next_metrics_update, math.inf if next_at is None else next_at)
                    if wake_at > now:
                        timeout = None if wake_at == math.inf else wake_at - now
                        self._clock.wait(self._timer_cond, timeout)
                        continue
            for item in due:
                self.add(item)
            if now >= next_metrics_update:
                self.update_unfinished_work()
                next_metrics_update = now + period
