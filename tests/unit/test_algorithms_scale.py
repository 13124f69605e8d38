from __future__ import annotations

import random

import pytest

from controller.algorithms import Action, MemberView, get_algorithm
from tests.unit.fakes.algorithms import IDLE, PENDING, STARVED, history, simulate, status

SCALE = get_algorithm("scale")
QUICK = {"cooldownSeconds": 0, "stabilizationSeconds": 0}


@pytest.mark.parametrize(
    ("case", "statuses", "options", "size", "expected"),
    [
        ("pending past waitSeconds grows, again after cooldown", [PENDING] * 10,
         {"waitSeconds": 30, "cooldownSeconds": 60}, 2, [(30, "grow", 1), (90, "grow", 1)]),
        ("pending shorter than waitSeconds does nothing", [PENDING, PENDING, IDLE] * 3,
         {"waitSeconds": 30, "idlePolls": 2}, 2, []),
        ("jobs needing more nodes than free grow at once", [STARVED],
         {"waitSeconds": 600}, 2, [(0, "grow", 1)]),
        ("waiting jobs that fit the free nodes do not", [status(sched=1, free=2, waiting={"2": 1})],
         {"waitSeconds": 600}, 2, []),
        ("growStep is clamped to maxSize", [STARVED], {"growStep": 3}, 4, [(0, "grow", 1)]),
        ("at maxSize nothing grows", [STARVED] * 5, QUICK, 5, []),
        ("idle for idlePolls shrinks", [IDLE] * 3, {"idlePolls": 3, **QUICK}, 3, [(20, "shrink", 1)]),
        ("shrinkStep is clamped to minSize", [IDLE] * 3, {"idlePolls": 3, "shrinkStep": 5, **QUICK}, 3,
         [(20, "shrink", 2)]),
        ("at minSize nothing shrinks", [IDLE] * 6, {"idlePolls": 1, **QUICK}, 1, []),
        ("idle without free nodes is not idle", [status(free=0)] * 6, {"idlePolls": 1, **QUICK}, 3, []),
        ("depend-only jobs keep the member busy", [status(depend=2, free=2)] * 6, {"idlePolls": 1, **QUICK}, 3, []),
        # As real Flux showed it (tests/e2e/test_e2e_real_flux.py): jobs left on the top rank, the
        # lower ranks free. The Flux Operator shrinks by removing the top pods: that would lose them.
        ("running jobs hold their ranks, whatever is free beside them", [status(run=2, free=2, up=3)] * 6,
         {"idlePolls": 1, **QUICK}, 3, []),
        ("jobs in cleanup still hold their ranks", [status(cleanup=1, free=2, up=3)] * 6,
         {"idlePolls": 1, **QUICK}, 3, []),
        ("stabilization delays shrink until the window is all idle", [IDLE] * 6,
         {"idlePolls": 3, "stabilizationSeconds": 30, "cooldownSeconds": 0}, 3, [(50, "shrink", 1)]),
        ("shrinks step by step while idle", [IDLE] * 4, {"idlePolls": 2, **QUICK}, 4,
         [(10, "shrink", 1), (20, "shrink", 1), (30, "shrink", 1)]),
        ("burst then quiet: grow, shrink only after cooldown and stabilization",
         [STARVED] * 3 + [IDLE] * 6,
         {"idlePolls": 2, "stabilizationSeconds": 30, "cooldownSeconds": 60}, 2, [(0, "grow", 1), (70, "shrink", 1)]),
        ("oscillating load never scales", [PENDING, IDLE] * 15,
         {"waitSeconds": 15, "idlePolls": 1, "stabilizationSeconds": 30, "cooldownSeconds": 30}, 3, []),
        ("oscillating starvation only grows", [STARVED, IDLE] * 8,
         {"idlePolls": 1, "stabilizationSeconds": 30, "cooldownSeconds": 60}, 2,
         [(0, "grow", 1), (60, "grow", 1), (120, "grow", 1)]),
    ],
)
def test_scale_decisions(case, statuses, options, size, expected) -> None:
    assert simulate(SCALE, statuses, options, size=size, min_size=1, max_size=5) == expected, case


def phased_load(rng: random.Random, polls: int) -> list[dict]:
    """Busy and quiet phases of random lengths, each poll noisy within its phase."""
    statuses: list[dict] = []
    while len(statuses) < polls:
        phase = rng.choice([(PENDING, STARVED), (IDLE,) * 5 + (PENDING,)])
        statuses += [rng.choice(phase) for _ in range(rng.randint(2, 20))]
    return statuses[:polls]


def flaps(taken: list[tuple[float, str, int]], cooldown: float, stabilization: float) -> list[tuple]:
    """Pairs of consecutive actions closer than the cooldown, or a shrink inside a grow's window."""
    return [
        (first, second)
        for first, second in zip(taken, taken[1:])
        if second[0] - first[0] < cooldown
        or ((first[1], second[1]) == ("grow", "shrink") and second[0] - first[0] <= stabilization)
    ]


@pytest.mark.parametrize("seed", range(8))
def test_random_load_never_flaps(seed: int) -> None:
    options = {"waitSeconds": 20, "idlePolls": 2, "stabilizationSeconds": 60, "cooldownSeconds": 40}
    taken = simulate(SCALE, phased_load(random.Random(seed), 150), options, size=4, min_size=1, max_size=8)
    assert {kind for _, kind, _ in taken} == {"grow", "shrink"}
    assert flaps(taken, cooldown=40, stabilization=60) == []


def test_same_load_flaps_without_cooldown_and_stabilization() -> None:
    """The flap check above can fail: the eager settings alternate on the same load."""
    eager = {"waitSeconds": 0, "idlePolls": 1, "stabilizationSeconds": 0, "cooldownSeconds": 0}
    taken = simulate(SCALE, phased_load(random.Random(0), 150), eager, size=4, min_size=1, max_size=8)
    assert flaps(taken, cooldown=40, stabilization=60) != []


def test_cooldown_blocks_any_scale() -> None:
    member = MemberView("m-0", 2, 1, 4, last_actions={"shrink": 95.0})
    samples = history(STARVED, STARVED, start=80)
    assert SCALE.decide(samples, member, {"cooldownSeconds": 60}, now=100) == []
    assert SCALE.decide(samples, member, {"cooldownSeconds": 60}, now=155) == [
        Action("grow", "m-0", 1, reason="a waiting job needs 2 nodes, 0 free")
    ]


def test_stale_history_does_not_shrink() -> None:
    member = MemberView("m-0", 3, 1, 4)
    samples = history(IDLE, IDLE, IDLE)
    assert SCALE.decide(samples, member, {"idlePolls": 1, "stabilizationSeconds": 30}, now=500) == []


def test_empty_history_decides_nothing() -> None:
    assert SCALE.decide([], MemberView("m-0", 2, 1, 4), {}, now=0) == []


def test_grow_reason_names_the_wait() -> None:
    (action,) = SCALE.decide(history(PENDING, PENDING, PENDING, PENDING), MemberView("m-0", 2, 1, 4),
                             {"waitSeconds": 30}, now=30)
    assert action == Action("grow", "m-0", 1, reason="3 jobs pending for 30s")
