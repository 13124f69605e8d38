"""Manager shutdown with leader election: what stops in which order, on a fake elector."""
from __future__ import annotations

import threading

from controller.runtime.controller import Controller
from controller.runtime.manager import Manager
from controller.runtime.reconcile import Request, Result
from tests.helpers import wait_for

DEADLINE = 5.0
REQUEST = Request("ns", "e")


class RecordingElector:
    """Leads at once and keeps "renewing" until stopped; notes stop and release in ``log``."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.is_leader = False
        self._stopped = threading.Event()

    def run(self, on_started_leading) -> bool:
        self.is_leader = True
        on_started_leading()
        self._stopped.wait()
        return False

    def stop(self) -> None:
        self.log.append("elector stopped")
        self._stopped.set()

    def release(self) -> bool:
        self.log.append("lease released")
        self.is_leader = False
        return True


class Blocking:
    """A reconcile that runs until the test releases it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.inside = threading.Event()
        self.release = threading.Event()

    def reconcile(self, request: Request) -> Result:
        self.inside.set()
        self.release.wait(DEADLINE)
        self.log.append("reconcile finished")
        return Result()


def leading_manager(log: list[str], reconciler) -> tuple[Manager, Controller]:
    manager = Manager(object(), metrics_port=None, health_port=None)   # no informers: no client calls
    manager.elector = RecordingElector(log)
    controller = Controller("toy", reconciler, manager.new_queue("toy"),
                            metrics=manager.controller_metrics, clock=manager.clock, workers=1)
    manager.add_controller(controller)
    return manager, controller


def test_the_lease_is_renewed_until_the_controllers_drained_then_released() -> None:
    # As controller-runtime: leader election is cancelled only after the leader's runnables
    # stopped. Stopping renewals first lets the lease expire mid-drain, and a standby then
    # reconciles next to the draining leader.
    log: list[str] = []
    reconciler = Blocking(log)
    manager, controller = leading_manager(log, reconciler)
    thread = threading.Thread(target=manager.start, daemon=True)
    thread.start()
    wait_for(lambda: manager.is_leader and controller._threads, DEADLINE, "the manager to lead")
    controller.queue.add(REQUEST)
    assert reconciler.inside.wait(DEADLINE)
    manager.stop()
    wait_for(controller.queue.shutting_down, DEADLINE, "the controller to start draining")
    assert log == [], "the elector stopped renewing while a reconcile was still in flight"
    reconciler.release.set()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert log == ["reconcile finished", "elector stopped", "lease released"]


class NeverSyncing:
    """An informer factory whose caches never sync (a watched CRD is not installed)."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.stopped = threading.Event()

    def start(self) -> None:
        pass

    def wait_for_cache_sync(self, timeout: float) -> bool:
        self.waiting.set()
        self.stopped.wait(timeout)
        return False

    def shutdown(self) -> None:
        self.stopped.set()


def test_stop_during_the_cache_sync_returns_without_waiting_out_the_sync_timeout() -> None:
    # SIGTERM while caches cannot sync must stop the manager now, not after
    # cache_sync_timeout (120 s, long past the pod's termination grace period).
    manager = Manager(object(), metrics_port=None, health_port=None)
    informers = NeverSyncing()
    manager.caches.informers = informers  # type: ignore[assignment]
    errors: list[BaseException] = []

    def start() -> None:
        try:
            manager.start()
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    try:
        assert informers.waiting.wait(DEADLINE)
        manager.stop()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "stop() did not end the wait for the caches"
        assert errors == [] and not manager.is_running() and not manager.is_ready()
    finally:
        informers.stopped.set()
