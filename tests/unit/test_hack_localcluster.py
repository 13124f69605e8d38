"""hack/localcluster.py and hack/localenv.py without a control plane: process teardown and
the per-run resources (pod CIDR) that concurrent runs must not share."""
from __future__ import annotations

import os
import random
import time
import subprocess
import sys
from pathlib import Path

import pytest

import localcluster
from localcluster import LocalCluster


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_stop_signals_no_pid_it_already_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = sleeper()
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data",
                           procs={"etcd": proc}, pids={"etcd": proc.pid})
    signalled: list[int] = []
    monkeypatch.setattr(localcluster, "_kill_pid", lambda pid, timeout=10: signalled.append(pid))
    cluster.stop()
    assert proc.returncode is not None
    # Once waited for, the pid is free for the kernel to reuse: signalling it again could
    # kill an unrelated process.
    assert signalled == []
    assert cluster.pids == {}


def test_stop_still_kills_pids_it_has_no_process_handle_for(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data", pids={"etcd": 4242})
    signalled: list[int] = []
    monkeypatch.setattr(localcluster, "_kill_pid", lambda pid, timeout=10: signalled.append(pid))
    cluster.stop()
    assert signalled == [4242]


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "locks"
    path.mkdir()
    monkeypatch.setattr(localcluster, "LOCK_DIR", path, raising=False)
    return path


def kwok_cidr(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    """start_kwok with every process and API call stubbed out; the --cidr kwok would get."""
    (cluster.bin_dir / "kwok").touch()
    spawned: list[list[str]] = []
    monkeypatch.setattr(cluster, "_spawn", lambda name, argv, *a, **kw: spawned.append(argv), raising=False)
    monkeypatch.setattr(cluster, "start_scheduler", lambda: None)
    monkeypatch.setattr(cluster, "kubectl", lambda *a, **kw: "")
    monkeypatch.setattr(cluster, "_wait_until", lambda *a, **kw: None)
    cluster.start_kwok(nodes=1)
    return next(arg.split("=", 1)[1] for arg in spawned[0] if arg.startswith("--cidr="))


def test_concurrent_clusters_hand_out_disjoint_pod_ips(tmp_path: Path, lock_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "a")
    second = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "b")
    cidr_a, cidr_b = kwok_cidr(first, monkeypatch), kwok_cidr(second, monkeypatch)
    assert cidr_a == "127.64.0.0/16"
    assert cidr_b != cidr_a and cidr_b.startswith("127.") and cidr_b.endswith(".0.0/16")
    # Stopped, its block is free for the next run.
    first.stop()
    third = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "c")
    assert kwok_cidr(third, monkeypatch) == cidr_a
    second.stop()
    third.stop()


def test_the_pod_cidr_lock_outlives_the_starter_in_kwok(lock_dir: Path) -> None:
    """A detached cluster's command exits: kwok, holding the inherited fd, keeps the block."""
    cidr, fd = localcluster.reserve_pod_cidr()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(fd,))
    try:
        os.close(fd)
        other, other_fd = localcluster.reserve_pod_cidr()
        assert other != cidr
        os.close(other_fd)
    finally:
        child.kill()
        child.wait()
    again, again_fd = localcluster.reserve_pod_cidr()
    os.close(again_fd)
    assert again == cidr


def test_no_free_pod_cidr_is_a_clear_error(lock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localcluster, "POD_CIDR_BLOCKS", range(64, 65))
    _, fd = localcluster.reserve_pod_cidr()
    try:
        with pytest.raises(localcluster.ClusterError, match="no free pod CIDR"):
            localcluster.reserve_pod_cidr()
    finally:
        os.close(fd)


class HungProcess:
    """A Popen stand-in whose process ignores SIGTERM: wait() times out until it is killed."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.killed = False

    def poll(self) -> int | None:
        return -9 if self.killed else None

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def kill(self) -> None:
        self.killed = True

    def wait(self, timeout: float | None = None) -> int:
        if not self.killed:
            raise subprocess.TimeoutExpired("operator", timeout or 0)
        return -9


class RecordingCluster:
    def __init__(self) -> None:
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_teardown_kills_a_hung_operator_and_still_stops_the_rest(tmp_path: Path) -> None:
    from localenv import LocalEnvironment, OperatorProcess

    hung, fine = HungProcess(), HungProcess()
    fine.wait = lambda timeout=None: 0  # type: ignore[method-assign]
    cluster = RecordingCluster()
    env = LocalEnvironment(cluster=cluster, workdir=tmp_path)  # type: ignore[arg-type]
    env.operators = [OperatorProcess("operator-0", hung, 1, 2, tmp_path / "0.log"),  # type: ignore[arg-type]
                     OperatorProcess("operator-1", fine, 3, 4, tmp_path / "1.log")]  # type: ignore[arg-type]
    env.stop()
    assert hung.killed, "an operator that ignores SIGTERM is killed, not left running"
    assert fine.signals, "the next operator is stopped too"
    assert cluster.stopped, "and the cluster"


def test_teardown_goes_on_after_a_failing_step_and_raises_its_error(tmp_path: Path) -> None:
    from localenv import LocalEnvironment

    class FailingRunner:
        def stop(self) -> None:
            raise RuntimeError("runner stop failed")

    cluster = RecordingCluster()
    env = LocalEnvironment(cluster=cluster, workdir=tmp_path)  # type: ignore[arg-type]
    env._runner = FailingRunner()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="runner stop failed"):
        env.stop()
    assert cluster.stopped


@pytest.mark.parametrize("name,start", [("kube-controller-manager", LocalCluster.start_controller_manager),
                                        ("kube-scheduler", LocalCluster.start_scheduler)])
def test_a_component_that_dies_on_start_is_an_error_naming_it(tmp_path: Path, name: str, start) -> None:
    """It used to count as started at once: a crash (a taken port, a bad flag) surfaced only
    later, as a test timing out on garbage collection or scheduling."""
    binary = tmp_path / name
    binary.write_text("#!/bin/sh\nsleep 0.3\necho 'failed to listen on 127.0.0.1: address already in use'\nexit 1\n")
    binary.chmod(0o755)
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data")
    cluster.data_dir.mkdir()
    try:
        with pytest.raises(localcluster.ClusterError, match=f"(?s){name} exited with code 1:.*address already in use"):
            start(cluster)
    finally:
        cluster.stop()


@pytest.mark.parametrize("etcd_fsync,flag_present", [(False, True), (True, False)])
def test_etcd_skips_fsync_only_when_not_asked_to_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      etcd_fsync: bool, flag_present: bool) -> None:
    """Tests run etcd without fsync for speed; bench_service asks for a syncing etcd, whose
    writes cost what a real cluster's do."""
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data", etcd_fsync=etcd_fsync)
    spawned: list[list[str]] = []
    monkeypatch.setattr(cluster, "_spawn", lambda name, argv, *a, **kw: spawned.append(argv))
    monkeypatch.setattr(cluster, "_wait_until", lambda *a, **kw: None)
    cluster._start_etcd()
    assert spawned[0][0].endswith("etcd")
    assert ("--unsafe-no-fsync" in spawned[0]) is flag_present


FAKE_ETCD = """#!/usr/bin/env python3
import http.server, socket, sys
url = sys.argv[sys.argv.index("--listen-client-urls") + 1]
port = int(url.rsplit(":", 1)[1])
try:
    server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
except OSError:
    print(f"listen tcp 127.0.0.1:{port}: bind: address already in use", flush=True)
    sys.exit(1)
server.serve_forever()
"""


def test_etcd_starts_again_on_new_ports_when_one_was_taken_before_it_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """free_port() releases the port it found; another server may bind it before etcd does."""
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real_free_port = localcluster.free_port
    handed_out: list[int] = []

    def first_a_taken_port() -> int:
        port = taken.getsockname()[1] if not handed_out else real_free_port()
        handed_out.append(port)
        return port

    monkeypatch.setattr(localcluster, "free_port", first_a_taken_port)
    (tmp_path / "etcd").write_text(FAKE_ETCD)
    (tmp_path / "etcd").chmod(0o755)
    (tmp_path / "health").write_text("ok")  # the fake serves its cwd: /health answers 200
    monkeypatch.chdir(tmp_path)
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data")
    cluster.data_dir.mkdir()
    try:
        cluster._start_etcd()
        assert cluster.etcd_port != taken.getsockname()[1]
        assert len(handed_out) == 4, "two ports for the failed start, two for the next"
        assert cluster.procs["etcd"].poll() is None
    finally:
        cluster.stop()
        taken.close()


def test_etcd_gives_up_after_its_attempts_naming_the_taken_port(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    monkeypatch.setattr(localcluster, "free_port", lambda: taken.getsockname()[1])
    (tmp_path / "etcd").write_text(FAKE_ETCD)
    (tmp_path / "etcd").chmod(0o755)
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data")
    cluster.data_dir.mkdir()
    try:
        with pytest.raises(localcluster.ClusterError, match="(?s)etcd exited with code 1:.*address already in use"):
            cluster._start_etcd(attempts=2)
    finally:
        cluster.stop()
        taken.close()


ORPHAN_PARENT = """
import sys, threading, time
from pathlib import Path
root = Path(sys.argv[1])
sys.path[:0] = [str(root), str(root / "hack")]
from controller.clock import RealClock
from sim.podprocesses import PodProcesses
processes = PodProcesses(Path(sys.argv[2]), events=None, clock=RealClock())
def spawn():
    running = processes.start("ns/pod-0", "service", "127.0.0.1",
                              [sys.executable, "-c", "import time; time.sleep(120)"])
    print(running.proc.pid, flush=True)
    time.sleep(120)                                    # a worker thread that lives on, as the runner's do
threading.Thread(target=spawn, daemon=True).start()
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _still_setpriv(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return os.path.basename(cmdline.read().split(b"\0", 1)[0]) == b"setpriv"
    except FileNotFoundError:
        return False


def test_a_killed_runner_takes_its_pod_processes_along(tmp_path: Path) -> None:
    """SIGKILL leaves no cleanup to run: the kernel ends pod processes with their runner."""
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PARENT, str(root), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # setpriv sets the death signal just before it execs the pod's command: a runner killed
        # in that millisecond leaves the process behind (documented), so kill it only after.
        deadline = time.monotonic() + 10
        while _still_setpriv(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _gone(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(child), f"pod process {child} outlived its killed runner"
    finally:
        parent.kill()


def test_a_pid_of_another_user_counts_as_alive_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_permitted(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")  # a reused pid of another user

    monkeypatch.setattr(localcluster.os, "kill", not_permitted)
    assert localcluster._alive(12345) is True


class IgnoredEvents:
    def exited(self, key: str, running: object, returncode: int, restart_in: float | None) -> None:
        pass

    def restarted(self, key: str, running: object) -> None:
        pass


_fork_hook_armed = False


def _exit_if_armed() -> None:
    if _fork_hook_armed:
        os._exit(97)


os.register_at_fork(after_in_child=_exit_if_armed)   # hooks cannot be removed: armed only in the test below


def test_starting_a_process_runs_no_python_fork_hooks_in_the_child(tmp_path: Path) -> None:
    """grpcio registers such hooks; run between fork and exec (as a preexec_fn makes Python do),
    they now and then aborted a pod's service before it started (SIGABRT, 'epoll_wait error:
    Bad file descriptor'): the e2e grow test then waited in vain for a dead service."""
    global _fork_hook_armed
    from controller.clock import RealClock
    from sim.podprocesses import PodProcesses
    processes = PodProcesses(tmp_path, IgnoredEvents(), clock=RealClock())
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path)
    _fork_hook_armed = True
    try:
        running = processes.start("ns/pod-0", "service", "127.0.0.1", [sys.executable, "-c", "pass"])
        assert running is not None
        pod = running.proc
        cluster._spawn("etcd", [sys.executable, "-c", "pass"])
        started = [pod, cluster.procs["etcd"]]
    finally:
        _fork_hook_armed = False
    assert [proc.wait(30) for proc in started] == [0, 0]


def test_free_port_is_below_the_ephemeral_range_that_outgoing_connections_take() -> None:
    floor = localcluster._ephemeral_floor()
    ports = {localcluster.free_port(random.Random(seed)) for seed in range(20)}
    assert all(localcluster.PORT_FLOOR <= port < floor for port in ports)
    assert len(ports) > 1, "drawn at random, so concurrent callers rarely pick the same port"


def test_free_port_skips_a_port_a_listener_holds() -> None:
    import socket
    rng_first = random.Random(7)
    held_port = localcluster.free_port(random.Random(7))
    with socket.socket() as held:
        held.bind(("127.0.0.1", held_port))
        held.listen()
        assert localcluster.free_port(rng_first) != held_port
