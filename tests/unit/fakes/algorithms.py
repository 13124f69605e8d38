"""Member statuses, poll histories and a driver loop the algorithm tests share (no tests here)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.algorithms import Action, Algorithm, MemberSample, MemberView

INTERVAL = 10.0


def status(
    *, new: int = 0, depend: int = 0, priority: int = 0, sched: int = 0, run: int = 0, cleanup: int = 0,
    inactive: int = 0, free: int = 0, up: int = 4, waiting: dict[str, int] | None = None,
) -> dict:
    return {
        "nodes": {"node_cores_free": free * 4, "node_cores_up": up * 4, "node_up_count": up, "node_free_count": free},
        "queue": {"new": new, "depend": depend, "priority": priority, "sched": sched, "run": run,
                  "cleanup": cleanup, "inactive": inactive},
        "waiting": waiting or {},
        "nextJobs": [],
    }


IDLE = status(free=2)
PENDING = status(sched=3, run=2, free=1)  # waiting for a moment, the scheduler could still place them
STARVED = status(sched=3, run=4, free=0, waiting={"2": 3})
DRAINED = status(inactive=10, free=4)


def history(*statuses: dict, start: float = 0.0) -> list[MemberSample]:
    return [MemberSample(start + i * INTERVAL, s) for i, s in enumerate(statuses)]


def simulate(
    algorithm: Algorithm, statuses: Sequence[dict], options: Mapping[str, object], *,
    size: int, min_size: int = 1, max_size: int = 8,
) -> list[tuple[float, str, int]]:
    """Feed one status per poll, apply each decision to the member, return (time, kind, amount)."""
    samples: list[MemberSample] = []
    last_actions: dict[str, float] = {}
    counts: dict[str, int] = {}
    taken: list[tuple[float, str, int]] = []
    for i, current in enumerate(statuses):
        now = i * INTERVAL
        samples.append(MemberSample(now, current))
        member = MemberView("m-0", size, min_size, max_size, dict(last_actions), dict(counts))
        for action in algorithm.decide(samples, member, options, now):
            size += action.amount if action.kind == "grow" else -action.amount if action.kind == "shrink" else 0
            last_actions[action.kind] = now
            counts[action.kind] = counts.get(action.kind, 0) + 1
            taken.append((now, action.kind, action.amount))
    return taken


def kinds(actions: list[Action]) -> list[str]:
    return [action.kind for action in actions]
