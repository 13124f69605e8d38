"""Manager runnables: the lifecycle the status poller (and other background parts) get."""
from __future__ import annotations

import threading

import pytest

from controller.runtime.leaderelection import LeaderElectionLost
from controller.runtime.manager import Manager
from tests.helpers import wait_for

DEADLINE = 5.0


class Recorder:
    def __init__(self, name: str, log: list[str], *, needs_leader_election: bool | None = None,
                 fail_stop: bool = False) -> None:
        self.name, self._log, self._fail_stop = name, log, fail_stop
        self.started = threading.Event()
        if needs_leader_election is not None:
            self.needs_leader_election = needs_leader_election

    def start(self) -> None:
        self._log.append(f"start {self.name}")
        self.started.set()

    def stop(self) -> None:
        self._log.append(f"stop {self.name}")
        if self._fail_stop:
            raise RuntimeError("stop failed")


class GatedElector:
    """Leads only once the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self._stopped = threading.Event()
        self.is_leader = False

    def run(self, on_started_leading) -> bool:
        self.gate.wait()
        if self._stopped.is_set():
            return False
        self.is_leader = True
        on_started_leading()
        self._stopped.wait()
        return False

    def stop(self) -> None:
        self._stopped.set()
        self.gate.set()  # a run still waiting for the gate ends, without leading

    def release(self) -> bool:
        return True


def new_manager() -> Manager:
    # No informers are registered, so the client is never called.
    return Manager(object(), metrics_port=None, health_port=None)


def run_in_thread(manager: Manager) -> threading.Thread:
    thread = threading.Thread(target=manager.start, daemon=True)
    thread.start()
    return thread


def test_runnables_start_after_sync_and_stop_in_reverse_order_on_shutdown() -> None:
    manager, log = new_manager(), []
    first, second = Recorder("a", log), Recorder("b", log, fail_stop=True)
    manager.add_runnable(first)
    manager.add_runnable(second)
    thread = run_in_thread(manager)
    assert second.started.wait(DEADLINE)
    assert manager.is_ready()
    manager.stop()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    # A failing stop is logged, and does not keep the other runnable running.
    assert log == ["start a", "start b", "stop b", "stop a"]


def test_leader_only_runnables_wait_for_the_lease_others_do_not() -> None:
    manager, log = new_manager(), []
    elector = GatedElector()
    manager.elector = elector
    everywhere = Recorder("everywhere", log, needs_leader_election=False)
    leader_only = Recorder("leader-only", log)
    manager.add_runnable(leader_only)
    manager.add_runnable(everywhere)
    thread = run_in_thread(manager)
    assert everywhere.started.wait(DEADLINE)
    assert not leader_only.started.is_set()
    elector.gate.set()
    assert leader_only.started.wait(DEADLINE)
    manager.stop()
    thread.join(DEADLINE)
    assert log == ["start everywhere", "start leader-only", "stop leader-only", "stop everywhere"]


def test_a_never_leading_replica_never_starts_leader_runnables() -> None:
    manager, log = new_manager(), []
    manager.elector = GatedElector()
    manager.add_runnable(Recorder("leader-only", log))
    thread = run_in_thread(manager)
    wait_for(manager.is_ready, DEADLINE, "the manager to be ready")
    manager.stop()
    thread.join(DEADLINE)
    assert log == []


def test_bad_runnables_and_late_additions_are_refused() -> None:
    manager = new_manager()
    with pytest.raises(TypeError, match="add_runnable: object needs start"):
        manager.add_runnable(object())
    thread = run_in_thread(manager)
    wait_for(manager.is_ready, DEADLINE, "the manager to be ready")
    with pytest.raises(RuntimeError, match="already started"):
        manager.add_runnable(Recorder("late", []))
    manager.stop()
    thread.join(DEADLINE)


def test_a_leader_runnable_is_not_stopped_while_it_is_still_starting() -> None:
    """Leader runnables start on the leader-election thread. A shutdown meanwhile called
    ``stop()`` on one whose ``start()`` had not returned (the status poller's stop then
    joined a thread not started yet, raised, and left its pool and channels open), and the
    start then went on after the stop."""
    log: list[str] = []

    class SlowStart:
        def __init__(self) -> None:
            self.entered = threading.Event()
            self.stop_called = threading.Event()

        def start(self) -> None:
            self.entered.set()
            # Bounded, in real time: a stop arriving within it is the defect shown.
            self.stop_called.wait(0.3)
            log.append("started")

        def stop(self) -> None:
            log.append("stopped")
            self.stop_called.set()

    manager, elector, runnable = new_manager(), GatedElector(), SlowStart()
    manager.elector = elector  # type: ignore[assignment]
    manager.add_runnable(runnable)
    thread = run_in_thread(manager)
    elector.gate.set()
    assert runnable.entered.wait(DEADLINE)
    manager.stop()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert log == ["started", "stopped"]


class Draining(Recorder):
    """A runnable with work to finish on a graceful stop (as the ActionRunner)."""

    def drain(self) -> None:
        self._log.append(f"drain {self.name}")


class LosingElector(GatedElector):
    """Leads at once, then loses the lease when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.gate.set()
        self.lose = threading.Event()

    def run(self, on_started_leading) -> bool:
        self.is_leader = True
        on_started_leading()
        self.lose.wait(DEADLINE)
        return True


def test_a_leader_stopping_with_the_lease_drains_its_runnables_before_stopping_them() -> None:
    manager, log = new_manager(), list[str]()
    elector = GatedElector()
    manager.elector = elector
    leader_only = Draining("leader-only", log)
    manager.add_runnable(leader_only)
    thread = run_in_thread(manager)
    elector.gate.set()
    assert leader_only.started.wait(DEADLINE)
    manager.stop()
    thread.join(DEADLINE)
    assert log == ["start leader-only", "drain leader-only", "stop leader-only"]


def test_a_leader_that_lost_the_lease_stops_its_runnables_without_draining() -> None:
    manager, log = new_manager(), list[str]()
    elector = LosingElector()
    manager.elector = elector
    leader_only = Draining("leader-only", log)
    manager.add_runnable(leader_only)
    lost: list[Exception] = []

    def run() -> None:
        try:
            manager.start()
        except LeaderElectionLost as error:
            lost.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert leader_only.started.wait(DEADLINE)
    elector.lose.set()
    thread.join(DEADLINE)
    assert not thread.is_alive() and len(lost) == 1
    assert log == ["start leader-only", "stop leader-only"]  # the next leader settles its work


def test_a_standby_stops_its_everywhere_runnables_without_draining() -> None:
    manager, log = new_manager(), list[str]()
    manager.elector = GatedElector()
    everywhere = Draining("everywhere", log, needs_leader_election=False)
    manager.add_runnable(everywhere)
    thread = run_in_thread(manager)
    assert everywhere.started.wait(DEADLINE)
    manager.stop()
    thread.join(DEADLINE)
    assert log == ["start everywhere", "stop everywhere"]
