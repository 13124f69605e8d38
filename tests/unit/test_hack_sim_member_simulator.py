"""SimulatedFlux: FIFO scheduling on N nodes, driven only by a FakeClock."""
from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from controller.member.backend import BackendError
from controller.member.jobgroups import JobGroup
from sim.member.simulator import SimulatedFlux

GROUPS = {
    "small": JobGroup("small", "sleep 10", 3, 1, 10.0),
    "big": JobGroup("big", "sleep 5", 1, 3, 5.0),
}


def simulator(nodes: int = 2) -> tuple[SimulatedFlux, FakeClock]:
    clock = FakeClock(start=0.0)
    return SimulatedFlux(GROUPS, nodes, clock, cores_per_node=4), clock


def test_fifo_queue_runs_what_fits_and_counts_the_rest() -> None:
    flux, _ = simulator(nodes=2)
    assert flux.submit("small", 3) == [1, 2, 3]
    assert flux.submit("big", 1) == [4]
    status = flux.status()
    assert status["queue"] == {"new": 0, "depend": 0, "priority": 0, "sched": 2, "run": 2,
                               "cleanup": 0, "inactive": 0}
    assert status["nodes"] == {"node_cores_free": 0, "node_cores_up": 8, "node_up_count": 2,
                               "node_free_count": 0}
    assert status["waiting"] == {"1": 1, "3": 1}
    assert status["nextJobs"] == [3, 4]


def test_jobs_finish_after_their_duration_and_the_queue_moves() -> None:
    flux, clock = simulator(nodes=3)
    flux.submit("small", 2)
    flux.submit("big", 1)           # needs 3 nodes: waits for both small jobs
    flux.submit("small", 1)         # FIFO: waits behind the big job even though a node is free
    assert flux.status()["queue"]["run"] == 2 and flux.status()["nodes"]["node_free_count"] == 1
    clock.step(9.9)
    assert flux.status()["queue"]["inactive"] == 0
    clock.step(0.1)
    status = flux.status()
    assert (status["queue"]["run"], status["queue"]["inactive"], status["nextJobs"]) == (1, 2, [4])
    clock.step(25)                  # big ends at 15, the last small at 25
    assert flux.status()["queue"]["inactive"] == 4
    assert flux.job(4).history == [("new", 0.0), ("sched", 0.0), ("run", 15.0), ("inactive", 25.0)]


def test_completions_are_replayed_in_time_order_within_one_big_step() -> None:
    flux, clock = simulator(nodes=1)
    flux.submit("small", 3)
    clock.step(100)
    assert [flux.job(i).history[-2:] for i in (1, 2, 3)] == [
        [("run", 0.0), ("inactive", 10.0)], [("run", 10.0), ("inactive", 20.0)],
        [("run", 20.0), ("inactive", 30.0)]]


def test_grow_starts_waiting_jobs_and_shrink_holds_new_ones() -> None:
    flux, clock = simulator(nodes=1)
    flux.submit("small", 3)
    flux.resize(3)
    assert flux.status()["queue"]["run"] == 3
    flux.resize(1)
    flux.submit("small", 1)
    status = flux.status()
    assert status["nodes"]["node_free_count"] == 0 and status["queue"]["sched"] == 1
    clock.step(10)                  # the three running jobs end; one node is left for job 4
    status = flux.status()
    assert (status["queue"]["run"], status["queue"]["inactive"]) == (1, 3)


def test_same_script_gives_the_same_story() -> None:
    def story() -> list[dict]:
        flux, clock = simulator(nodes=2)
        seen = []
        for step, (group, count, nodes) in enumerate([("small", 2, 2), ("big", 1, 3), ("small", 4, 1)]):
            flux.submit(group, count)
            flux.resize(nodes)
            clock.step(3.5 * (step + 1))
            seen.append(flux.status())
        return seen

    assert story() == story()


@pytest.mark.parametrize("group, count, message", [
    ("nope", 1, "group: unknown job group 'nope'"),
    ("small", 0, "count: expected a positive integer"),
    ("small", True, "count: expected a positive integer"),
])
def test_bad_submissions_name_the_field(group: str, count: int, message: str) -> None:
    flux, _ = simulator()
    with pytest.raises(BackendError, match=message):
        flux.submit(group, count)


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="nodes: must be >= 0"):
        SimulatedFlux(GROUPS, -1, FakeClock())
    flux, _ = simulator()
    with pytest.raises(BackendError, match="nodes: must be >= 0"):
        flux.resize(-2)
