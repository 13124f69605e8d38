"""terminate and refill: decisions from histories."""
from __future__ import annotations

import pytest

from controller.algorithms import Action, MemberView, get_algorithm
from tests.unit.fakes.algorithms import DRAINED, IDLE, PENDING, history, kinds, simulate, status

TERMINATE = get_algorithm("terminate")
REFILL = get_algorithm("refill")
MEMBER = MemberView("m-0", 2, 1, 4)


@pytest.mark.parametrize(
    ("case", "statuses", "options", "expected"),
    [
        ("drained for confirmPolls", [PENDING, DRAINED, DRAINED, DRAINED], {}, ["terminate"]),
        ("drained too briefly", [PENDING, DRAINED, DRAINED], {}, []),
        ("a busy poll restarts the count", [DRAINED, DRAINED, PENDING, DRAINED, DRAINED], {}, []),
        ("nothing finished yet means not started", [IDLE] * 5, {}, []),
        ("cleanup still running", [status(cleanup=1, inactive=3)] * 5, {}, []),
        ("dependent jobs still queued", [status(depend=1, inactive=3)] * 5, {}, []),
        ("confirmPolls 1", [DRAINED], {"confirmPolls": 1}, ["terminate"]),
        ("deleteMiniCluster: delete, then terminate", [DRAINED] * 3, {"deleteMiniCluster": "true"},
         ["delete", "terminate"]),
    ],
)
def test_terminate(case, statuses, options, expected) -> None:
    samples = history(*statuses)
    assert kinds(TERMINATE.decide(samples, MEMBER, options, samples[-1].time)) == expected, case


def test_terminate_once() -> None:
    done = MemberView("m-0", 2, 1, 4, last_actions={"terminate": 5.0})
    assert TERMINATE.decide(history(DRAINED, DRAINED, DRAINED), done, {}, now=20) == []


def test_terminate_does_not_ask_again_for_a_delete_already_recorded() -> None:
    deleted = MemberView("m-0", 2, 1, 4, last_actions={"delete": 5.0}, action_counts={"delete": 1})
    samples = history(DRAINED, DRAINED, DRAINED)
    assert kinds(TERMINATE.decide(samples, deleted, {"deleteMiniCluster": "true"}, 20)) == ["terminate"]


def test_terminate_reason() -> None:
    (action,) = TERMINATE.decide(history(DRAINED, DRAINED, DRAINED), MEMBER, {}, now=20)
    assert action == Action("terminate", "m-0", reason="queue drained for 3 polls, 10 jobs finished")


@pytest.mark.parametrize(
    ("case", "statuses", "options", "expected"),
    [
        ("empty for emptyPolls submits", [PENDING, IDLE, IDLE], {"group": "lammps", "count": 4},
         [(20, "submit", 4)]),
        ("running jobs are not empty", [status(run=1)] * 4, {"group": "lammps"}, []),
        ("waits for the submitted jobs before refilling again", [IDLE] * 7,
         {"group": "lammps", "maxRefills": 3, "emptyPolls": 2},
         [(10, "submit", 1), (30, "submit", 1), (50, "submit", 1)]),
        ("at most maxRefills", [IDLE] * 10, {"group": "lammps", "maxRefills": 1, "emptyPolls": 1},
         [(0, "submit", 1)]),
        ("maxRefills 0 never refills", [IDLE] * 5, {"group": "lammps", "maxRefills": 0}, []),
    ],
)
def test_refill(case, statuses, options, expected) -> None:
    assert simulate(REFILL, statuses, options, size=2) == expected, case


def test_refill_names_the_group() -> None:
    (action,) = REFILL.decide(history(IDLE, IDLE), MEMBER, {"group": "sim", "count": 2}, now=10)
    assert action == Action("submit", "m-0", 2, group="sim", reason="queue empty for 2 polls (refill 1 of 1)")
