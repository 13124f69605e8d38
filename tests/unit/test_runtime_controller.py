"""Controller workers: what each reconcile outcome does to the queue, and metrics."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from controller.runtime.controller import Controller
from controller.runtime.metrics import ControllerMetrics
from controller.runtime.reconcile import Request, Result, TerminalError
from controller.workqueue import ItemExponentialFailureRateLimiter, RateLimitingQueue
from tests.helpers import wait_for

REQUEST = Request("ns", "e")


class RecordingQueue(RateLimitingQueue):
    """The real queue, also noting which scheduling calls the controller made."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(ItemExponentialFailureRateLimiter(base_delay=1.0), "test", clock=clock)
        self.calls: list[tuple] = []
        self._inside_rate_limited = False

    def add_rate_limited(self, item) -> None:
        self.calls.append(("add_rate_limited", item))
        self._inside_rate_limited = True
        try:
            super().add_rate_limited(item)
        finally:
            self._inside_rate_limited = False

    def forget(self, item) -> None:
        self.calls.append(("forget", item))
        super().forget(item)

    def add_after(self, item, seconds: float) -> None:
        if not self._inside_rate_limited:
            self.calls.append(("add_after", item, seconds))
        super().add_after(item, seconds)


class ScriptedReconciler:
    """Returns (or raises) the scripted outcomes in order, recording each request."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[Request] = []

    def reconcile(self, request: Request):
        self.requests.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def make(reconciler, clock, registry, workers: int = 1) -> tuple[Controller, RecordingQueue]:
    queue = RecordingQueue(clock)
    queue.start()  # the timer, as Controller.start would: these tests drive workers by hand
    controller = Controller("ensemble", reconciler, queue, metrics=ControllerMetrics(registry),
                            clock=clock, workers=workers, object_key="ensemble")
    return controller, queue


def total(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("controller_runtime_reconcile_total",
                                     {"controller": "ensemble", "result": result})


def run_one(controller: Controller, queue: RecordingQueue) -> None:
    queue.add(REQUEST)
    assert controller.process_next_work_item()
    queue.shutdown()


def test_success_forgets_the_request_and_counts_success(clock, registry):
    controller, queue = make(ScriptedReconciler(Result()), clock, registry)
    run_one(controller, queue)
    assert queue.calls == [("forget", REQUEST)]
    assert total(registry, "success") == 1
    assert total(registry, "error") == 0


def test_exception_requeues_with_backoff_and_logs_the_traceback(clock, registry, caplog):
    controller, queue = make(ScriptedReconciler(RuntimeError("apply failed")), clock, registry)
    with caplog.at_level(logging.ERROR):
        run_one(controller, queue)
    assert queue.calls == [("add_rate_limited", REQUEST)]
    assert queue.num_requeues(REQUEST) == 1
    assert total(registry, "error") == 1
    assert registry.get_sample_value("controller_runtime_reconcile_errors_total",
                                     {"controller": "ensemble"}) == 1
    [record] = [r for r in caplog.records if r.getMessage() == "Reconciler error"]
    assert "apply failed" in str(record.exc_info[1])


def test_a_terminal_error_is_logged_and_counted_but_not_requeued(clock, registry, caplog):
    caplog.set_level(logging.ERROR)
    controller, queue = make(ScriptedReconciler(RuntimeError("apply failed"),
                                                TerminalError("spec.members[0]: cannot be fixed by retrying")),
                             clock, registry)
    queue.add(REQUEST)
    controller.process_next_work_item()  # an ordinary error first: its backoff is then forgotten
    clock.step(1)
    assert controller.process_next_work_item()
    queue.shutdown()
    assert queue.calls == [("add_rate_limited", REQUEST), ("forget", REQUEST)]
    assert queue.num_requeues(REQUEST) == 0
    assert len(queue) == 0
    assert total(registry, "error") == 2
    assert registry.get_sample_value("controller_runtime_reconcile_errors_total",
                                     {"controller": "ensemble"}) == 2
    assert registry.get_sample_value("controller_runtime_terminal_reconcile_errors_total",
                                     {"controller": "ensemble"}) == 1
    first, terminal = [r for r in caplog.records if r.getMessage() == "Reconciler error"]
    assert "cannot be fixed" in str(terminal.exc_info[1])


def test_a_non_result_return_is_an_error(clock, registry, caplog):
    controller, queue = make(ScriptedReconciler(None), clock, registry)
    run_one(controller, queue)
    assert queue.calls == [("add_rate_limited", REQUEST)]
    assert "expected Result" in caplog.text


def test_requeue_after_forgets_backoff_and_readds_after_the_delay(clock, registry):
    controller, queue = make(ScriptedReconciler(Result(requeue_after=30)), clock, registry)
    queue.add(REQUEST)
    controller.process_next_work_item()
    assert queue.calls == [("forget", REQUEST), ("add_after", REQUEST, 30)]
    assert total(registry, "requeue_after") == 1
    assert len(queue) == 0
    clock.step(30)
    item, shutdown = queue.get(timeout=5)
    assert (item, shutdown) == (REQUEST, False)
    queue.shutdown()


def test_requeue_goes_through_the_rate_limiter(clock, registry):
    controller, queue = make(ScriptedReconciler(Result(requeue=True), Result(requeue=True)),
                             clock, registry)
    queue.add(REQUEST)
    controller.process_next_work_item()
    clock.step(1)   # first retry after base_delay
    controller.process_next_work_item()
    assert queue.calls == [("add_rate_limited", REQUEST)] * 2
    assert queue.num_requeues(REQUEST) == 2
    assert total(registry, "requeue") == 2
    queue.shutdown()


def test_negative_requeue_after_is_rejected():
    with pytest.raises(ValueError, match="requeue_after"):
        Result(requeue_after=-1)


def test_exceptions_do_not_kill_workers(clock, registry):
    second_done = threading.Event()

    class FailsFirst:
        def reconcile(self, request: Request) -> Result:
            if request.name == "bad":
                raise ValueError("boom")
            second_done.set()
            return Result()

    controller, queue = make(FailsFirst(), clock, registry, workers=1)
    controller.start()
    queue.add(Request("ns", "bad"))
    queue.add(Request("ns", "good"))
    assert second_done.wait(5), "the worker died on the first exception"
    controller.shutdown(timeout=5)
    assert total(registry, "error") == 1 and total(registry, "success") == 1


def test_metrics_report_concurrency_and_active_workers(clock, registry):
    inside = threading.Event()
    release = threading.Event()

    class Blocking:
        def reconcile(self, request: Request) -> Result:
            inside.set()
            release.wait(5)
            return Result()

    controller, queue = make(Blocking(), clock, registry, workers=3)
    labels = {"controller": "ensemble"}
    assert registry.get_sample_value("controller_runtime_max_concurrent_reconciles", labels) == 3
    controller.start()
    queue.add(REQUEST)
    assert inside.wait(5)
    assert registry.get_sample_value("controller_runtime_active_workers", labels) == 1
    release.set()
    controller.shutdown(timeout=5)
    assert registry.get_sample_value("controller_runtime_active_workers", labels) == 0
    assert registry.get_sample_value("controller_runtime_reconcile_time_seconds_count", labels) == 1


def test_shutdown_with_drain_waits_for_the_reconcile_in_flight(clock, registry):
    inside = threading.Event()
    release = threading.Event()
    finished: list[Request] = []

    class Slow:
        def reconcile(self, request: Request) -> Result:
            inside.set()
            release.wait(5)
            finished.append(request)
            return Result()

    controller, queue = make(Slow(), clock, registry)
    controller.start()
    queue.add(REQUEST)
    assert inside.wait(5)
    stopper = threading.Thread(target=controller.shutdown, kwargs={"timeout": 5})
    stopper.start()
    assert wait_for(queue.shutting_down, 5, "the queue to shut down")
    assert stopper.is_alive() and finished == []
    release.set()
    stopper.join(5)
    assert not stopper.is_alive() and finished == [REQUEST]


def test_workers_must_be_positive(clock, registry):
    with pytest.raises(ValueError, match="workers must be >= 1"):
        make(ScriptedReconciler(), clock, registry, workers=0)


def test_shutdown_gives_up_on_a_hung_reconcile_after_the_timeout(clock, registry, caplog):
    inside = threading.Event()
    release = threading.Event()

    class Hung:
        def reconcile(self, request: Request) -> Result:
            inside.set()
            release.wait(30)
            return Result()

    controller, queue = make(Hung(), clock, registry)
    controller.start()
    queue.add(REQUEST)
    assert inside.wait(5)
    stopper = threading.Thread(target=controller.shutdown, kwargs={"timeout": 0.2})
    with caplog.at_level(logging.WARNING):
        stopper.start()
        stopper.join(5)
    try:
        assert not stopper.is_alive(), "shutdown must return although the reconcile hangs"
        assert queue.shutting_down()
        assert "still in flight" in caplog.text
    finally:
        release.set()


def test_shutdown_without_drain_starts_no_further_reconciles(clock, registry):
    # A lost lease shuts down without draining: the backlog is the new leader's now, and
    # reconciling it here would run next to that leader.
    inside = threading.Event()
    release = threading.Event()
    started: list[Request] = []

    class Slow:
        def reconcile(self, request: Request) -> Result:
            started.append(request)
            inside.set()
            release.wait(5)
            return Result()

    controller, queue = make(Slow(), clock, registry)
    controller.start()
    queue.add(Request("ns", "in-flight"))
    assert inside.wait(5)
    queue.add(Request("ns", "queued-1"))
    queue.add(Request("ns", "queued-2"))
    stopper = threading.Thread(target=controller.shutdown, kwargs={"timeout": 5, "drain": False})
    stopper.start()
    assert wait_for(queue.shutting_down, 5, "the queue to shut down")
    release.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert started == [Request("ns", "in-flight")]


def test_the_shutdown_timeout_bounds_the_whole_shutdown_not_each_worker(clock, registry):
    # Every worker hung: the drain gives up after the timeout, and joining the workers
    # must use what is left of it, not another full timeout per worker.
    workers = 4
    inside = threading.Semaphore(0)
    release = threading.Event()

    class Hung:
        def reconcile(self, request: Request) -> Result:
            inside.release()
            release.wait(30)
            return Result()

    controller, queue = make(Hung(), clock, registry, workers=workers)
    controller.start()
    for index in range(workers):
        queue.add(Request("ns", f"e{index}"))
    try:
        for _ in range(workers):
            assert inside.acquire(timeout=5)
        started = time.monotonic()
        controller.shutdown(timeout=0.5)
        elapsed = time.monotonic() - started
        # one shared deadline: about 0.5 s; a deadline per worker: 0.5 + 4 * 0.5 = 2.5 s
        assert elapsed < 1.5, f"shutdown took {elapsed:.2f}s (0.5 s per worker after the drain's 0.5 s?)"
    finally:
        release.set()


def test_a_drain_that_timed_out_starts_no_queued_reconcile_after_shutdown_returned():
    # The manager releases the lease right after shutdown returns: a worker freed from a hung
    # reconcile must not go on to the backlog, which would reconcile next to the new leader.
    clock = FakeClock()
    inside = threading.Event()
    release = threading.Event()
    started: list[Request] = []
    finished = threading.Event()

    class Hung:
        def reconcile(self, request: Request) -> Result:
            started.append(request)
            if request.name == "hung":
                inside.set()
                release.wait(5)
            finished.set()
            return Result()

    queue = RateLimitingQueue(ItemExponentialFailureRateLimiter(base_delay=1.0), "test", clock=clock)
    controller = Controller("ensemble", Hung(), queue, metrics=ControllerMetrics(CollectorRegistry()),
                            clock=clock, workers=1, object_key="ensemble")
    controller.start()
    queue.add(Request("ns", "hung"))
    assert inside.wait(5)
    queue.add(Request("ns", "queued"))
    controller.shutdown(timeout=0.1)
    release.set()
    assert finished.wait(5)
    worker = controller._threads[0]
    worker.join(5)
    assert not worker.is_alive()
    assert started == [Request("ns", "hung")]
