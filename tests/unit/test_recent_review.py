"""Second-look review of recent fixes: paths the fixes' own tests did not cover."""
from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from controller.clock import FakeClock
from controller.runtime.controller import Controller
from controller.runtime.metrics import ControllerMetrics
from controller.runtime.reconcile import Request, Result
from controller.workqueue import ItemExponentialFailureRateLimiter, RateLimitingQueue


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
