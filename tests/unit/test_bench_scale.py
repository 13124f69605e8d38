"""bench_scale's CPU by thread role (where a measured process's CPU went) and reconcile count."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_scale  # noqa: E402
from bench_scale import cpu_ms_per_ensemble_by_role, thread_cpu_by_role, thread_role  # noqa: E402

TICKS = bench_scale.CLOCK_TICKS


@pytest.mark.parametrize(("name", "role"), [
    ("reflector-ensembles.ensemble.flux-framework.org/v1alpha1", "reflector"),
    ("resync-configmaps/v1", "resync"),
    ("handler-ensemble-owns-deployments", "handler"),
    ("ensemble-worker-3", "ensemble-worker"),
    ("ensemble-worker-12", "ensemble-worker"),
    ("ThreadPoolExecutor-0_1", "ThreadPoolExecutor"),
    ("algorithm-actions-0", "algorithm-actions"),
    ("event-recorder", "event-recorder"),
    ("MainThread", "MainThread"),
    ("workqueue-timer-ensemble", "workqueue-timer-ensemble"),
    ("native:grpc_global_tim", "native:grpc_global_tim"),
])
def test_thread_role_drops_only_the_resource_or_index_that_tells_threads_of_a_kind_apart(name: str,
                                                                                        role: str) -> None:
    assert thread_role(name) == role


def _task(task_dir: Path, tid: int, comm: str, utime: int, stime: int) -> None:
    """A /proc/<pid>/task/<tid> entry: stat's 14th and 15th fields are utime and stime in ticks."""
    task = task_dir / str(tid)
    task.mkdir()
    # pid (comm) state ppid ... : the comm may hold spaces and parentheses, so it is split at the last ")".
    fields = ["S"] + ["0"] * 10 + [str(utime), str(stime)] + ["0"] * 20
    (task / "stat").write_text(f"{tid} ({comm}) " + " ".join(fields) + "\n")
    (task / "comm").write_text(comm + "\n")


def test_thread_cpu_by_role_sums_user_and_system_time_of_every_thread_of_a_role(tmp_path: Path) -> None:
    _task(tmp_path, 100, "python", 3 * TICKS, TICKS)
    _task(tmp_path, 101, "python", TICKS, 0)
    _task(tmp_path, 102, "python", 0, 2 * TICKS)
    _task(tmp_path, 103, "grpc (poll) x", TICKS, TICKS)
    names = {100: "MainThread", 101: "ensemble-worker-0", 102: "ensemble-worker-1"}

    assert thread_cpu_by_role(tmp_path, names) == {
        "MainThread": 4.0, "ensemble-worker": 3.0, "native:grpc (poll) x": 2.0}


def test_thread_cpu_by_role_skips_a_thread_that_ended_while_it_was_read(tmp_path: Path) -> None:
    _task(tmp_path, 100, "python", TICKS, 0)
    (tmp_path / "101").mkdir()  # listed, but its files are gone
    assert thread_cpu_by_role(tmp_path, {100: "MainThread"}) == {"MainThread": 1.0}


def test_thread_cpu_by_role_names_this_process_threads_by_their_python_names() -> None:
    started, release = threading.Event(), threading.Event()

    def wait() -> None:
        started.set()
        release.wait()
    thread = threading.Thread(target=wait, name="bench-probe-7")
    thread.start()
    started.wait()
    try:
        roles = thread_cpu_by_role()
    finally:
        release.set()
        thread.join()
    assert "bench-probe" in roles
    assert roles["MainThread"] > 0  # this interpreter's start-up alone is many ticks


def test_cpu_by_role_is_the_growth_per_ensemble_largest_first_without_idle_roles() -> None:
    before = {"ensemble-worker": 1.0, "reflector": 0.5, "resync": 0.1}
    after = {"ensemble-worker": 3.9, "reflector": 1.2, "resync": 0.1, "event-recorder": 0.3}

    by_role = cpu_ms_per_ensemble_by_role(before, after, 400)

    assert by_role == {"ensemble-worker": 7.25, "reflector": 1.75, "event-recorder": 0.75}
    assert list(by_role) == ["ensemble-worker", "reflector", "event-recorder"]


def test_reconciles_counts_every_result_of_every_controller_and_nothing_else() -> None:
    from prometheus_client import CollectorRegistry, Counter

    from controller.runtime.metrics import ControllerMetrics
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    Counter("other_total", "not a reconcile", registry=registry).inc(7)
    metrics.reconcile_total.labels("ensemble", "success").inc(3)
    metrics.reconcile_total.labels("ensemble", "error").inc()
    metrics.reconcile_total.labels("other", "requeue").inc(2)
    metrics.reconcile_errors_total.labels("ensemble").inc()

    assert bench_scale.reconciles(registry) == 6


class SteppingClock:
    """Thread CPU time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_request_cpu_counts_a_call_made_inside_a_timed_call_once() -> None:
    clock = SteppingClock()
    request_cpu = bench_scale.RequestCpu(clock)

    def inner() -> str:
        clock.now += 0.002
        return "answer"

    def outer() -> str:
        clock.now += 0.001
        return timed_inner()
    timed_inner = request_cpu.wrap(inner)

    assert request_cpu.wrap(outer)() == "answer"
    assert request_cpu.seconds == pytest.approx(0.003)
    assert timed_inner() == "answer"
    assert request_cpu.seconds == pytest.approx(0.005)


def test_request_cpu_counts_a_call_that_raised_and_times_the_next_one_again() -> None:
    clock = SteppingClock()
    request_cpu = bench_scale.RequestCpu(clock)

    def failing() -> None:
        clock.now += 0.004
        raise OSError("reset")

    with pytest.raises(OSError):
        request_cpu.wrap(failing)()
    request_cpu.wrap(lambda: setattr(clock, "now", clock.now + 0.001))()

    assert request_cpu.seconds == pytest.approx(0.005)


def test_request_cpu_sums_the_thread_cpu_of_requests_on_every_thread() -> None:
    request_cpu = bench_scale.RequestCpu()  # the real per-thread clock
    own: list[float] = []
    lock = threading.Lock()

    def busy() -> None:
        started = time.thread_time()
        request_cpu.wrap(lambda: sum(i * i for i in range(200_000)))()
        with lock:
            own.append(time.thread_time() - started)
    threads = [threading.Thread(target=busy) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(own) == 3 and min(own) > 0
    assert request_cpu.seconds == pytest.approx(sum(own), rel=0.2)


def test_request_split_gives_the_cost_of_each_request_and_the_cpu_beyond_them() -> None:
    row = bench_scale.Row("ours", 400, 4, 10.0, 3.2, 8.0, 9.0, 9.0, 90.0, 60.0, 0, 0.0, 0,
                          request_cpu_ms_per_ensemble=4.5)

    assert bench_scale.request_split(row) == "in requests 4.5 (0.500 each), the rest 3.5"


def test_the_floor_goes_first_in_odd_repeats_once_ours_showed_what_to_send() -> None:
    seen = ({"phase": "Pending"}, 1)
    assert bench_scale.floor_goes_first(0, None) is None
    assert bench_scale.floor_goes_first(1, None) is None  # nothing seen yet: ours must go first
    assert bench_scale.floor_goes_first(1, seen) == seen
    assert bench_scale.floor_goes_first(2, seen) is None
    assert bench_scale.floor_goes_first(3, seen) == seen
