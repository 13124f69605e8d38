"""A controller: N workers taking requests from one rate-limited queue to a reconciler."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from controller.clock import Clock
from controller.logs import log_context
from controller.runtime.metrics import ControllerMetrics
from controller.runtime.reconcile import Reconciler, Request, Result, TerminalError

log = logging.getLogger(__name__)


class WorkQueue(Protocol):
    """The part of controller.workqueue.RateLimitingQueue a controller uses."""

    def start(self) -> None: ...
    def add(self, item: Any) -> None: ...
    def get(self, timeout: float | None = None) -> tuple[Any, bool]: ...
    def done(self, item: Any) -> None: ...
    def add_after(self, item: Any, seconds: float) -> None: ...
    def add_rate_limited(self, item: Any) -> None: ...
    def forget(self, item: Any) -> None: ...
    def shutdown(self) -> None: ...
    def shutdown_with_drain(self) -> None: ...


def new_reconcile_id() -> str:
    return str(uuid.uuid4())


class Controller:
    """Runs a reconciler over the requests its event handlers enqueue.

    A reconcile failure (exception, or a non-Result return) is logged and retried with
    the queue's backoff, a ``TerminalError`` only logged and counted; neither ends a worker thread.
    """

    def __init__(self, name: str, reconciler: Reconciler, queue: WorkQueue, *,
                 metrics: ControllerMetrics, clock: Clock, workers: int = 4,
                 object_key: str = "object",
                 new_id: Callable[[], str] = new_reconcile_id) -> None:
        if workers < 1:
            raise ValueError(f"controller {name!r}: workers must be >= 1, got {workers}")
        self.name = name
        self.reconciler = reconciler
        self.queue = queue
        self.workers = workers
        self._metrics = metrics
        self._clock = clock
        self._object_key = object_key
        self._new_id = new_id
        self._threads: list[threading.Thread] = []
        # Set by a shutdown without drain: the queue still hands out what it holds after
        # shutdown, and the workers must leave it.
        self._abandoned = threading.Event()
        metrics.register_controller(name, workers)

    def start(self) -> None:
        """Start the queue's timer and the worker threads; they run until ``shutdown``."""
        if self._threads:
            raise RuntimeError(f"controller {self.name!r} already started")
        self.queue.start()
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-worker-{index}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("Starting workers", extra={"controller": self.name, "workers": self.workers})

    def shutdown(self, timeout: float | None = 30.0, *, drain: bool = True) -> None:
        """Stop the workers; with ``drain``, first let queued and in-flight work finish.

        ``timeout`` bounds the whole shutdown, as controller-runtime's graceful shutdown
        timeout does: a reconcile that hangs must not keep the process from exiting.
        Without leadership, draining would reconcile next to the new leader, so a lost
        lease shuts down without it: no reconcile starts after this call, queued or not.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if drain:
            draining = threading.Thread(target=self.queue.shutdown_with_drain,
                                        name=f"{self.name}-drain", daemon=True)
            draining.start()
            draining.join(timeout)
            if draining.is_alive():
                log.warning("work still in flight after %ss; stopping without it", timeout,
                            extra={"controller": self.name})
        else:
            self._abandoned.set()
        self.queue.shutdown()
        for thread in self._threads:  # what is left of the one timeout (threads join in real time)
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        # A worker still in a hung reconcile starts nothing more once this returns: the
        # manager releases the lease next, and the backlog would run next to the new leader.
        self._abandoned.set()
        log.info("Stopped workers", extra={"controller": self.name})

    def _work(self) -> None:
        while self.process_next_work_item():
            pass

    def process_next_work_item(self) -> bool:
        """Reconcile one request; False once the queue shut down (or was abandoned)."""
        request, shutdown = self.queue.get()
        if shutdown:
            return False
        if self._abandoned.is_set():
            self.queue.done(request)
            return False
        try:
            self._reconcile(request)
        finally:
            self.queue.done(request)
        return True

    def _reconcile(self, request: Request) -> None:
        active = self._metrics.active_workers.labels(self.name)
        context = {"controller": self.name, self._object_key: str(request),
                   "reconcileID": self._new_id()}
        with log_context(**context):
            active.inc()
            started = self._clock.now()
            try:
                result = self.reconciler.reconcile(request)
                if not isinstance(result, Result):
                    raise TypeError(f"reconcile returned {type(result).__name__}, expected Result")
            except TerminalError:
                log.exception("Reconciler error", extra={"terminal": True})
                self._count_error(terminal=True)
                self.queue.forget(request)
                return
            except Exception:
                log.exception("Reconciler error")
                self._count_error(terminal=False)
                self.queue.add_rate_limited(request)
                return
            finally:
                active.dec()
                self._metrics.reconcile_time_seconds.labels(self.name).observe(
                    max(0.0, self._clock.now() - started))
            self._schedule_next(request, result)

    def _count_error(self, *, terminal: bool) -> None:
        self._metrics.reconcile_errors_total.labels(self.name).inc()
        if terminal:
            self._metrics.terminal_reconcile_errors_total.labels(self.name).inc()
        self._metrics.reconcile_total.labels(self.name, "error").inc()

    def _schedule_next(self, request: Request, result: Result) -> None:
        if result.requeue_after:
            self.queue.forget(request)
            self.queue.add_after(request, result.requeue_after)
            outcome = "requeue_after"
        elif result.requeue:
            self.queue.add_rate_limited(request)
            outcome = "requeue"
        else:
            self.queue.forget(request)
            outcome = "success"
        self._metrics.reconcile_total.labels(self.name, outcome).inc()
