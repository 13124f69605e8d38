"""The pod process runner restarts a pod's process as a kubelet would: restartPolicy Always
after a crash-loop backoff on the injected clock, restartCount and the last exit in the pod
status; Job pods (members) stay exited; a stop never races a restart."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock
from sim.podprocesses import PodProcesses, RunningProcess
from sim.podrunner import SERVICE_CONTAINER, PodProcessRunner
from sim.restarts import BackoffPolicy, CrashLoopBackoff, container_exit_code, restarts_after
from tests.helpers import wait_for, wait_for_waiters
from tests.unit.fakes.podrunner import FakeManager

EVENT_TIMEOUT = 10.0
KEY = "ns/pod-0"


def crashes(marker: Path, times: int = 2) -> list[str]:
    """A process that exits 3 on its first ``times`` runs and stays up on the next ones."""
    return [sys.executable, "-c", "import os, sys, time\n"
            f"runs = os.path.getsize({str(marker)!r}) if os.path.exists({str(marker)!r}) else 0\n"
            f"if runs < {times}:\n"
            f"    open({str(marker)!r}, 'a').write('x'); sys.exit(3)\n"
            "time.sleep(60)"]


class RecordedEvents:
    """ProcessEvents that remember each call, with an Event per kind to wait on."""

    def __init__(self) -> None:
        self.exits: list[tuple[int, float | None]] = []
        self.restarts: list[int] = []
        self.exited_once, self.restarted_once = threading.Event(), threading.Event()

    def exited(self, key: str, running: RunningProcess, returncode: int, restart_in: float | None) -> None:
        self.exits.append((returncode, restart_in))
        self.exited_once.set()

    def restarted(self, key: str, running: RunningProcess) -> None:
        self.restarts.append(running.restarts)
        self.restarted_once.set()


class LaunchRecording(PodProcesses):
    """Keeps every process it launched, so a test can check none outlives a stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.launched: list[subprocess.Popen] = []

    def _launch(self, argv: list[str], ip: str, log_path: Path) -> subprocess.Popen:
        proc = super()._launch(argv, ip, log_path)
        self.launched.append(proc)
        return proc


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def processes(tmp_path: Path, events: RecordedEvents, clock: FakeClock):
    processes = LaunchRecording(tmp_path, events, clock=clock, backoff=BackoffPolicy())
    yield processes
    processes.stop_all()
    assert all(proc.poll() is not None for proc in processes.launched), "a pod process outlived stop_all"


# ---- the rules ---------------------------------------------------------------------------
def test_backoff_restarts_a_first_crash_at_once_then_doubles_from_10s_up_to_5_minutes() -> None:
    # a kubelet restarts a container at once after its first crash; it waited 10 s here
    backoff = CrashLoopBackoff(BackoffPolicy())
    assert [backoff.delay_after(ran_for=1) for _ in range(8)] == [0, 10, 20, 40, 80, 160, 300, 300]


def test_backoff_starts_over_after_a_run_of_10_minutes() -> None:
    backoff = CrashLoopBackoff(BackoffPolicy())
    for _ in range(5):
        backoff.delay_after(ran_for=1)
    assert backoff.delay_after(ran_for=599) == 160
    assert backoff.delay_after(ran_for=600) == 0
    assert backoff.delay_after(ran_for=1) == 10


@pytest.mark.parametrize("policy,returncode,restarts", [
    ("Always", 0, True), ("Always", 3, True), ("Always", -9, True),
    ("OnFailure", 0, False), ("OnFailure", 3, True), ("OnFailure", -9, True),
    ("Never", 0, False), ("Never", 3, False)])
def test_which_exits_restart(policy: str, returncode: int, restarts: bool) -> None:
    assert restarts_after(policy, returncode) is restarts


def test_a_signal_shows_as_128_plus_its_number() -> None:
    assert (container_exit_code(-9), container_exit_code(3), container_exit_code(0)) == (137, 3, 0)


# ---- PodProcesses on a fake clock ----------------------------------------------------------
def test_an_always_process_comes_back_after_its_backoff_on_the_same_key(
        processes: LaunchRecording, events: RecordedEvents, clock: FakeClock, tmp_path: Path) -> None:
    first = processes.start(KEY, "service", "127.0.0.1", crashes(tmp_path / "ran"), restart_policy="Always")
    assert first is not None
    wait_for_waiters(clock, 1, timeout=EVENT_TIMEOUT)   # the first crash restarted at once, the second waits
    assert events.exits == [(3, 0.0), (3, 10.0)] and events.restarts == [1]
    waits = clock.waits_begun
    clock.step(9.5)
    wait_for(lambda: clock.waits_begun == waits + 1 and clock.waiter_count == 1, EVENT_TIMEOUT,
             "the restart to wake, find 0.5 s left and wait again")
    assert events.restarts == [1] and len(processes.launched) == 2
    clock.step(0.5)
    wait_for(lambda: events.restarts == [1, 2], EVENT_TIMEOUT, "the restart after the backoff")
    assert processes.get(KEY) is first and first.restarts == 2
    assert len(processes.launched) == 3 and first.proc is processes.launched[2]
    assert first.proc.poll() is None and not first.exited.is_set()


@pytest.mark.parametrize("policy,code", [("Never", 3), ("OnFailure", 0)])
def test_a_process_its_policy_does_not_restart_stays_exited(
        processes: LaunchRecording, events: RecordedEvents, clock: FakeClock, policy: str, code: int) -> None:
    running = processes.start(KEY, "member", "127.0.0.1", [sys.executable, "-c", f"raise SystemExit({code})"],
                              restart_policy=policy)
    assert running is not None and events.exited_once.wait(EVENT_TIMEOUT)
    assert events.exits == [(code, None)]
    clock.step(3600)
    assert clock.waiter_count == 0 and len(processes.launched) == 1 and running.exited.is_set()


def test_a_pod_stopped_during_its_backoff_is_not_started_again(
        processes: LaunchRecording, events: RecordedEvents, clock: FakeClock, tmp_path: Path) -> None:
    processes.start(KEY, "service", "127.0.0.1", crashes(tmp_path / "ran"), restart_policy="Always")
    wait_for_waiters(clock, 1, timeout=EVENT_TIMEOUT)
    processes.stop(KEY)
    wait_for(lambda: clock.waiter_count == 0, EVENT_TIMEOUT, "the restart to be called off")
    clock.step(10)
    assert processes.get(KEY) is None and len(processes.launched) == 2 and events.restarts == [1]


def test_a_stopped_runner_restarts_nothing_and_starts_nothing(
        processes: LaunchRecording, events: RecordedEvents, clock: FakeClock, tmp_path: Path) -> None:
    processes.start(KEY, "service", "127.0.0.1", crashes(tmp_path / "ran"), restart_policy="Always")
    wait_for_waiters(clock, 1, timeout=EVENT_TIMEOUT)
    processes.stop_all()
    wait_for(lambda: clock.waiter_count == 0, EVENT_TIMEOUT, "the restart to be called off")
    clock.step(10)
    assert processes.start("ns/other", "service", "127.0.0.1", crashes(tmp_path / "x")) is None
    assert len(processes.launched) == 2 and events.restarts == [1]


def test_a_process_outlives_the_thread_that_asked_for_it(
        processes: LaunchRecording, events: RecordedEvents, tmp_path: Path) -> None:
    """Reconcile workers start pods' processes and end when the manager stops, which localenv and
    the fixtures do before stopping the runner: a process tied to its starter's thread (PR_SET_PDEATHSIG
    is per thread) was SIGKILLed then and reported as a crash (CrashLoopBackOff, exit 137)."""
    marker = tmp_path / "execed"
    starter: list[int] = []

    def reconcile_worker() -> None:
        starter.append(threading.get_native_id())
        processes.start(KEY, "service", "127.0.0.1", ["sh", "-c", f"touch {marker}; exec sleep 60"],
                        restart_policy="Always")
        wait_for(marker.exists, EVENT_TIMEOUT, "the process to run (its death signal set)")

    worker = threading.Thread(target=reconcile_worker)
    worker.start()
    worker.join(EVENT_TIMEOUT)
    wait_for(lambda: not Path(f"/proc/self/task/{starter[0]}").exists(), EVENT_TIMEOUT,
             "the worker thread to be gone")   # the kernel signals a thread's children as it exits
    running = processes.get(KEY)
    assert running is not None
    processes.stop(KEY)
    assert running.proc.returncode == -signal.SIGTERM and events.exits == []


# ---- the runner: what the pod status says ----------------------------------------------------
def service_pod(restart_policy: str = "Always") -> dict[str, Any]:
    kwok_status = {"name": SERVICE_CONTAINER, "image": "img", "ready": True, "started": True,
                   "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
    return {"metadata": {"name": "hello-abc", "namespace": "ns"},
            "spec": {"restartPolicy": restart_policy, "serviceAccountName": "hello",
                     "containers": [{"name": SERVICE_CONTAINER, "image": "img",
                                     "command": ["ensemble-operator", "service", "--host", "0.0.0.0"]}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1", "containerStatuses": [kwok_status]}}


def fake_interpreter(tmp_path: Path) -> str:
    """Stands in for ``python -m controller service``: exits 3 twice, then stays up."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\nif [ ! -e {tmp_path}/ran2 ]; then [ -e {tmp_path}/ran ] && touch {tmp_path}/ran2; "
                      f"touch {tmp_path}/ran; exit 3; fi\nexec sleep 60\n")
    script.chmod(0o755)
    return str(script)


def container_status(patch: dict[str, Any]) -> dict[str, Any]:
    return patch["patch"]["status"]["containerStatuses"][0]


def test_a_crashed_service_pod_restarts_and_its_status_counts_it(tmp_path: Path, clock: FakeClock) -> None:
    from controller.runtime import Request
    manager = FakeManager([service_pod()])
    runner = PodProcessRunner(manager, server="https://127.0.0.1:1", ca_file="ca.crt",  # type: ignore[arg-type]
                              workdir=tmp_path / "pods", python=fake_interpreter(tmp_path), clock=clock)
    try:
        runner.reconcile(Request("ns", "hello-abc"))
        wait_for_waiters(clock, 1, timeout=EVENT_TIMEOUT)
        crashed, restarted, waiting = manager.client.patches
        # the first crash: shown exited (kubectl: Error), restarted at once
        status = container_status(crashed)
        assert status["restartCount"] == 0 and status["ready"] is False and status["lastState"] == {}
        assert status["state"]["terminated"]["exitCode"] == 3
        status = container_status(restarted)
        assert status["restartCount"] == 1 and status["ready"] is True and "running" in status["state"]
        # the second: waits out the backoff
        assert (waiting["name"], waiting["subresource"], waiting["patch_type"]) == ("hello-abc", "status", "strategic")
        status = container_status(waiting)
        assert status["restartCount"] == 1 and status["ready"] is False
        assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert status["lastState"]["terminated"]["exitCode"] == 3
        assert {c["type"]: c["status"] for c in waiting["patch"]["status"]["conditions"]} == \
            {"Ready": "False", "ContainersReady": "False"}
        runner.reconcile(Request("ns", "hello-abc"))   # an event meanwhile starts no second process
        clock.step(10)
        with manager.client.patched:
            manager.client.patched.wait_for(lambda: len(manager.client.patches) == 4, EVENT_TIMEOUT)
        status = container_status(manager.client.patches[-1])
        assert status["restartCount"] == 2 and status["ready"] is True and "running" in status["state"]
        assert status["lastState"]["terminated"]["exitCode"] == 3
        running = runner.processes.get("ns/hello-abc")
        assert running is not None and running.proc.poll() is None
    finally:
        runner.stop()
    assert running.proc.poll() is not None


def test_a_service_pod_killed_by_a_signal_reports_exit_code_137(tmp_path: Path, clock: FakeClock) -> None:
    manager = FakeManager([service_pod()])
    runner = PodProcessRunner(manager, server="s", ca_file="c", workdir=tmp_path,  # type: ignore[arg-type]
                              clock=clock)
    running = runner.processes.start("ns/hello-abc", "service", "127.0.0.1", ["sleep", "60"],
                                     container=SERVICE_CONTAINER, restart_policy="Always")
    try:
        assert running is not None
        running.proc.kill()
        with manager.client.patched:
            assert manager.client.patched.wait_for(lambda: len(manager.client.patches) == 2, EVENT_TIMEOUT)
        assert container_status(manager.client.patches[-1])["lastState"]["terminated"] == {
            "exitCode": 137, "reason": "Error", "startedAt": "2023-11-14T22:30:00Z",
            "finishedAt": "2023-11-14T22:30:00Z"}
    finally:
        runner.stop()


def test_a_member_exit_still_ends_its_minicluster_and_is_not_restarted(tmp_path: Path, clock: FakeClock) -> None:
    member_pod = {"metadata": {"name": "hello-0-0", "namespace": "ns", "labels": {"job-name": "hello-0"}},
                  "spec": {"restartPolicy": "Never"}, "status": {"phase": "Running", "podIP": "127.0.0.2"}}
    manager = FakeManager([member_pod])
    runner = PodProcessRunner(manager, server="s", ca_file="c", workdir=tmp_path,  # type: ignore[arg-type]
                              clock=clock)
    running = runner.processes.start("ns/hello-0-0", "member", "127.0.0.2", ["sh", "-c", "exit 2"],
                                     minicluster="hello-0")
    try:
        assert running is not None
        with manager.client.patched:
            assert manager.client.patched.wait_for(lambda: manager.client.patches, EVENT_TIMEOUT)
        assert manager.client.patches == [{"name": "hello-0-0", "namespace": "ns", "patch": {
            "metadata": {"annotations": {"ensemble.flux-framework.org/sim-exit-code": "2"}}}}]
        clock.step(3600)
        assert clock.waiter_count == 0 and running.restarts == 0
    finally:
        runner.stop()
